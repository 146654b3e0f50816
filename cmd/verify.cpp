// gaggle verify — not built yet: issue #5 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_verify(CLI::App& sub) {
  set_example(sub, "  gaggle verify experts/sst2 --trust allowed_signers");
  return not_built_yet(sub, "issue #5");
}

}  // namespace gaggle::cli
