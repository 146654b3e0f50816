// gaggle debug make-bundle — a small valid unsigned bundle (random tensors for a made-up
// tiny base) for tests and demos (lib/bundle/demo_bundle.h).
#include <iostream>

#include "bundle/demo_bundle.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_debug_make_bundle(CLI::App& sub) {
  auto out = std::make_shared<std::string>();
  auto opt = std::make_shared<bundle::DemoBundleOptions>();
  sub.add_option("--out", *out, "The bundle directory to create (must not exist)")->required();
  sub.add_option("--name", opt->name, "Bundle name (lowercase, digits, . _ -)")->capture_default_str();
  sub.add_option("--version", opt->version, "Bundle version (semver)")->capture_default_str();
  sub.add_option("--seed", opt->seed, "Seed of the random tensors")->capture_default_str();
  set_example(sub,
              "  gaggle debug make-bundle --out /tmp/demo --name demo --version 0.1.0\n"
              "  gaggle sign /tmp/demo --key ~/.ssh/id_ed25519");
  return [out, opt]() -> int {
    auto m = bundle::make_demo_bundle(*out, *opt);
    std::cout << "made: " << m.name << "@" << m.version << " (" << m.files.size() << " file, unsigned) in " << *out << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
