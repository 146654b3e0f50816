// gaggle eval — not built yet: issue #8 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_eval(CLI::App& sub) {
  set_example(sub, "  gaggle eval --model routed --tasks examples/tasks/held-out --report report.json");
  return not_built_yet(sub, "issue #8");
}

}  // namespace gaggle::cli
