// gaggle hub — not built yet: issue #6 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_hub(CLI::App& sub) {
  set_example(sub, "  gaggle hub init /srv/hub.git");
  return not_built_yet(sub, "issue #6");
}

}  // namespace gaggle::cli
