// gaggle publish — not built yet: issue #6 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_publish(CLI::App& sub) {
  set_example(sub, "  gaggle publish experts/sst2 --hub file:///srv/hub.git --key ~/.ssh/id_ed25519");
  return not_built_yet(sub, "issue #6");
}

}  // namespace gaggle::cli
