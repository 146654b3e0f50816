// gaggle hub — create and manage hub repositories: 'hub init' (a bare repository with
// the layout, README and verification hook), 'hub trust' (install the allowed-signers
// file the hook verifies against) and 'hub gc' (remove blob-store files no manifest
// references). Logic in lib/hub/hub.h and lib/hub/gc.h.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "hub/gc.h"
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
  CLI::App* trust_cmd = sub.add_subcommand("trust", "Install the allowed-signers file of a hub, and bring its verification hook up to date");
  trust_cmd->add_option("hub", *trust_hub, "The hub repository (a local path)")->required();
  trust_cmd->add_option("file", *trust_file, "Allowed-signers file (OpenSSH format)")->required();

  auto gc_hub = std::make_shared<std::string>();
  auto gc_dir = std::make_shared<std::string>();
  auto gc_grace = std::make_shared<std::string>("24h");
  auto gc_dry = std::make_shared<bool>(false);
  CLI::App* gc = sub.add_subcommand(
      "gc", "Remove blob-store files that no published manifest references (uploads of killed or refused publishes)");
  gc->add_option("hub", *gc_hub, "The hub repository (a local path: run this on the server)")->required();
  gc->add_option("--blob-dir", *gc_dir, "The blob store's directory (where its server keeps the PUT files)")->required();
  gc->add_option("--grace", *gc_grace,
                 "Keep unreferenced blobs younger than this (90s, 15m, 24h, 7d): a publish in flight has PUT its "
                 "blobs but not yet pushed its manifest")
      ->capture_default_str();
  gc->add_flag("--dry-run", *gc_dry, "List what would be removed; remove nothing");
  gc->add_flag("--json", *json, "Print the result as JSON");

  set_example(sub,
              "  gaggle hub init /srv/hub.git --trust allowed_signers\n"
              "  gaggle hub trust /srv/hub.git allowed_signers\n"
              "  gaggle hub gc /srv/hub.git --blob-dir /srv/www/blobs --dry-run\n"
              "  gaggle hub gc /srv/hub.git --blob-dir /srv/www/blobs --grace 7d");
  return [=]() -> int {
    if (gc->parsed()) {
      hub::BlobGcOptions o;
      o.hub = *gc_hub;
      o.blob_dir = *gc_dir;
      o.grace = hub::parse_duration(*gc_grace);
      o.dry_run = *gc_dry;
      auto r = hub::gc_blob_store(o);
      if (*json) {
        nlohmann::ordered_json out = {{"manifests", r.manifests},       {"referenced", r.referenced},
                                      {"kept_referenced", r.kept_referenced}, {"kept_young", r.kept_young},
                                      {"removed_bytes", r.removed_bytes},  {"dry_run", o.dry_run}};
        out["removed"] = nlohmann::ordered_json::array();
        for (const auto& b : r.removed) out["removed"].push_back({{"sha256", b.sha256}, {"bytes", b.bytes}});
        out["missing"] = r.missing;
        std::cout << out.dump(2) << "\n";
      } else {
        for (const auto& b : r.removed)
          std::cout << (o.dry_run ? "would remove " : "removed ") << b.sha256 << "  " << b.bytes << " bytes\n";
        std::cout << (o.dry_run ? "would remove " : "removed ") << r.removed.size() << " blobs (" << r.removed_bytes
                  << " bytes); kept " << r.kept_referenced << " referenced by " << r.manifests << " manifests and "
                  << r.kept_young << " younger than " << *gc_grace << "\n";
        for (const auto& m : r.missing)
          std::cerr << "gaggle: warning: blob " << m << " is listed by a manifest but missing from the store\n";
      }
      return kExitSuccess;
    }
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
