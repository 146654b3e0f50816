// gaggle assemble — not built yet: issue #7 builds it and replaces this file.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_assemble(CLI::App& sub) {
  set_example(sub, "  gaggle assemble --base examples/base --pool pool --router phatgoose --out routed");
  return not_built_yet(sub, "issue #7");
}

}  // namespace gaggle::cli
