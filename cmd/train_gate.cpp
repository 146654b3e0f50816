// gaggle train-gate — not built yet: issue #4 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_train_gate(CLI::App& sub) {
  set_example(sub, "  gaggle train-gate --base examples/base --expert experts/sst2 --data train.jsonl");
  return not_built_yet(sub, "issue #4");
}

}  // namespace gaggle::cli
