// gaggle pull — not built yet: issue #6 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_pull(CLI::App& sub) {
  set_example(sub, "  gaggle pull --hub file:///srv/hub.git --pool pool --trust allowed_signers");
  return not_built_yet(sub, "issue #6");
}

}  // namespace gaggle::cli
