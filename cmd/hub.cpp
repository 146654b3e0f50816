// gaggle hub — create and manage hub repositories: 'hub init' (a bare repository with
// the layout, README and verification hook) and 'hub trust' (install the allowed-signers
// file the hook verifies against). Logic in lib/hub/hub.h.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "hub/hub.h"
#include "io/error.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : p;
}

}  // namespace

Runner setup_hub(CLI::App& sub) {
  sub.require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto trust = std::make_shared<std::string>();
  auto title = std::make_shared<std::string>("gaggle hub");
  auto json = std::make_shared<bool>(false);
  CLI::App* init = sub.add_subcommand("init", "Create a bare hub repository with its verification hook");
  init->add_option("path", *path, "Where to create the hub (must not exist, or be empty)")->required();
  init->add_option("--trust", *trust, "Allowed-signers file the hook verifies pushed bundles against");
  init->add_option("--title", *title, "Title of the hub's README")->capture_default_str();
  init->add_flag("--json", *json, "Print the result as JSON");

  auto trust_hub = std::make_shared<std::string>();
  auto trust_file = std::make_shared<std::string>();
  CLI::App* trust_cmd = sub.add_subcommand("trust", "Install the allowed-signers file of a hub");
  trust_cmd->add_option("hub", *trust_hub, "The hub repository (a local path)")->required();
  trust_cmd->add_option("file", *trust_file, "Allowed-signers file (OpenSSH format)")->required();

  set_example(sub,
              "  gaggle hub init /srv/hub.git --trust allowed_signers\n"
              "  gaggle hub trust /srv/hub.git allowed_signers");
  return [=]() -> int {
    if (init->parsed()) {
      hub::HubInitOptions o;
      o.trust_file = *trust;
      o.gaggle_binary = self_executable();
      o.title = *title;
      hub::init_hub(*path, o);
      if (*json) {
        nlohmann::ordered_json out = {{"path", std::filesystem::absolute(*path).string()},
                                      {"branch", "main"},
                                      {"trust", !trust->empty()},
                                      {"hook", "hooks/pre-receive"}};
        std::cout << out.dump(2) << "\n";
      } else {
        std::cout << "created hub " << *path << " (branch main, pre-receive hook installed"
                  << (trust->empty() ? "; no trust file yet: add one with 'gaggle hub trust'" : "") << ")\n";
      }
      return kExitSuccess;
    }
    hub::set_hub_trust(*trust_hub, *trust_file);
    std::cout << "hub " << *trust_hub << " now trusts the signers in " << *trust_file << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
