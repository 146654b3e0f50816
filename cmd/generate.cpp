// gaggle generate — not built yet: issue #7 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_generate(CLI::App& sub) {
  set_example(sub, "  gaggle generate --model routed");
  return not_built_yet(sub, "issue #7");
}

}  // namespace gaggle::cli
