#!/bin/sh
# Regenerates lib/hub/hook_scripts.cpp from hooks/ (run from the repository root):
#   tests/hub/embed_hooks.sh > lib/hub/hook_scripts.cpp
set -eu
cat <<'HEAD'
// The hook scripts of hooks/, embedded so that `gaggle hub init` installs them from any
// install. Generated from hooks/pre-receive and hooks/pre-push by tests/hub/embed_hooks.sh
// (tests/hub/hub_test.cpp checks that they stay byte-identical): after editing a hook,
// regenerate with  tests/hub/embed_hooks.sh > lib/hub/hook_scripts.cpp
#include "hub/hub.h"

namespace gaggle::hub {
HEAD
for hook in pre-receive pre-push; do
  fn=$(echo "$hook" | tr - _)_hook_script
  printf '\nconst std::string& %s() {\n  static const std::string script = R"GAGGLEHOOK(' "$fn"
  cat "hooks/$hook"
  printf ')GAGGLEHOOK";\n  return script;\n}\n'
done
printf '\n}  // namespace gaggle::hub\n'
