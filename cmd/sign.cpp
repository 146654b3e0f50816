// gaggle sign — not built yet: issue #5 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_sign(CLI::App& sub) {
  set_example(sub, "  gaggle sign experts/sst2 --key ~/.ssh/id_ed25519");
  return not_built_yet(sub, "issue #5");
}

}  // namespace gaggle::cli
