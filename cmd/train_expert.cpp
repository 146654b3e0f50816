// gaggle train-expert — not built yet: issue #4 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_train_expert(CLI::App& sub) {
  set_example(sub, "  gaggle train-expert --base examples/base --data train.jsonl --out experts/sst2 --name sst2");
  return not_built_yet(sub, "issue #4");
}

}  // namespace gaggle::cli
