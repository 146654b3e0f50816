// gaggle pool — show what a local pool holds (lib/hub/pool.h) and verify it
// (lib/hub/pool_trust.h).
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "hub/pool.h"
#include "hub/pool_trust.h"
#include "hub_progress.h"
#include "io/error.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_pool(CLI::App& sub) {
  sub.require_subcommand(1);
  auto pool_dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* list = sub.add_subcommand("list", "List the bundles in a pool");
  list->add_option("--pool", *pool_dir, "The pool directory")->required();
  list->add_flag("--json", *json, "Print pool.json's content as JSON");
  auto trust = std::make_shared<std::string>();
  CLI::App* verify = sub.add_subcommand("verify", "Verify every bundle of a pool (signature, signer, files, tensors)");
  verify->add_option("--pool", *pool_dir, "The pool directory")->required();
  verify->add_option("--trust", *trust, "Allowed-signers file (default: the one the pool was pulled with)");
  verify->add_flag("--json", *json, "Print the verified bundles as JSON");
  set_example(sub,
              "  gaggle pool list --pool pool\n  gaggle pool list --pool pool --json | jq '.bundles[].name'\n"
              "  gaggle pool verify --pool pool");
  return [=]() -> int {
    if (verify->parsed()) {
      auto verified = hub::verify_pool(*pool_dir, *trust);
      if (*json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& v : verified)
          list.push_back({{"name", v.name}, {"version", v.version}, {"principal", v.principal},
                          {"key_fingerprint", v.key_fingerprint}, {"cached", v.from_cache}});
        std::cout << nlohmann::json{{"pool", *pool_dir}, {"verified", list}}.dump(2) << "\n";
        return kExitSuccess;
      }
      std::size_t cached = 0;
      for (const auto& v : verified) cached += v.from_cache;
      std::printf("%zu bundles verified against %s (%zu unchanged since the last check)\n", verified.size(),
                  hub::pool_trust_file(*pool_dir, *trust).c_str(), cached);
      return kExitSuccess;
    }
    hub::Pool pool = hub::read_pool(*pool_dir);
    if (*json) {
      std::cout << hub::serialize_pool(pool);
      return kExitSuccess;
    }
    std::size_t w = 4;
    for (const auto& b : pool.bundles) w = std::max(w, b.name.size() + 1 + b.version.size());
    std::printf("%-*s  %-24s  %10s  %s\n", static_cast<int>(w), "bundle", "signer", "size", "path");
    std::uint64_t total = 0;
    for (const auto& b : pool.bundles) {
      std::string nv = b.name + "@" + b.version;
      std::printf("%-*s  %-24s  %10s  %s\n", static_cast<int>(w), nv.c_str(), b.principal.c_str(),
                  hub_human_bytes(b.bytes).c_str(), b.path.c_str());
      total += b.bytes;
    }
    std::printf("\n%zu bundles, %s, from %s at %s (%s)\n", pool.bundles.size(), hub_human_bytes(total).c_str(),
                pool.hub.c_str(), pool.commit.substr(0, 12).c_str(), pool.updated.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
