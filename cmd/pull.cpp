// gaggle pull — fetch a hub (or a static HTTP index) into a local pool, verifying every
// bundle before it enters (lib/hub/pull.h).
#include <iostream>

#include <nlohmann/json.hpp>

#include "hub/pull.h"
#include "hub_progress.h"
#include "io/error.h"
#include "io/terminal_text.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_pull(CLI::App& sub) {
  auto opt = std::make_shared<hub::PullOptions>();
  auto hub_url = std::make_shared<std::string>();
  auto pool = std::make_shared<std::string>();
  auto trust = std::make_shared<std::string>();
  auto ca = std::make_shared<std::string>();
  auto known_hosts = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  sub.add_option("--hub", *hub_url, "The hub (path, file://, git://, http(s)://, ssh://) or a static index URL ending in pool.json")
      ->required();
  sub.add_option("--pool", *pool, "The local pool directory (created if missing)")->required();
  sub.add_option("--trust", *trust, "Allowed-signers file: the keys whose bundles you accept")->required();
  sub.add_option("--only", opt->only, "Pull only these bundles (NAME or NAME@VERSION)");
  sub.add_option("--ca-file", *ca, "PEM file of a private CA for https (TLS is always verified)");
  sub.add_option("--ssh-known-hosts", *known_hosts,
                 "ssh:// hubs: the known_hosts file listing the hub's host key (default $GAGGLE_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts)");
  sub.add_option("--retries", opt->retries, "Extra attempts for a failed download")->capture_default_str();
  sub.add_flag("--json", *json, "Print the result as JSON (for scripts)");
  sub.add_flag("-q,--quiet", *quiet, "No progress bar");
  set_example(sub,
              "  gaggle pull --hub file:///srv/hub.git --pool pool --trust allowed_signers\n"
              "  gaggle pull --hub https://experts.example/pool/pool.json --pool pool --trust allowed_signers \\\n"
              "      --ca-file ca.pem --only sst2 --json\n"
              "  gaggle pull --hub ssh://git@hub.example/srv/hub.git --pool pool --trust allowed_signers   # ssh-agent");
  return [=]() -> int {
    hub::PullOptions o = *opt;
    o.hub = *hub_url;
    o.pool_dir = *pool;
    o.trust_file = *trust;
    o.ca_file = *ca;
    o.ssh_known_hosts = *known_hosts;
    o.progress = hub_progress_bar(*quiet || *json);
    hub::PullResult r = hub::pull_pool(o);
    hub_progress_done();
    if (*json) {
      nlohmann::ordered_json out = {{"hub", r.hub},         {"commit", r.commit},       {"pool", *pool},
                                    {"installed", r.installed}, {"unchanged", r.unchanged}, {"rejected", r.rejected},
                                    {"git_bytes", r.git_bytes}, {"git_objects", r.git_objects}, {"http_bytes", r.http_bytes},
                                    {"reused_bytes", r.reused_bytes},
                                    {"index_bytes", r.index_bytes}, {"index_not_modified", r.index_not_modified}};
      out["bundles"] = nlohmann::ordered_json::array();
      for (const auto& b : r.bundles) {
        nlohmann::ordered_json j = {{"name", b.name}, {"version", b.version}, {"status", b.status}};
        if (!b.principal.empty()) j["principal"] = b.principal;
        if (!b.reason.empty()) j["reason"] = b.reason;
        out["bundles"].push_back(j);
      }
      std::cout << out.dump(2) << "\n";
    } else {
      for (const auto& b : r.bundles)
        if (b.status == "installed") std::cout << "installed " << b.name << "@" << b.version << " (signed by " << b.principal << ")\n";
      std::cout << "pool " << *pool << ": " << r.installed << " installed, " << r.unchanged << " unchanged, " << r.rejected
                << " rejected; received " << human_bytes(r.git_bytes + r.http_bytes)
                << (r.reused_bytes ? " (and reused " + human_bytes(r.reused_bytes) + " of tensors already held)" : "")
                << (r.index_not_modified ? " (index not modified)" : "") << "\n";
    }
    for (const auto& b : r.bundles)
      if (b.status == "rejected")
        std::cerr << "gaggle: error: rejected " << b.name << "@" << b.version << ": " << io::terminal_safe(b.reason)
                  << "\n";
    if (r.rejected) {
      std::cerr << "hint: rejected bundles were not installed; the rest of the pool is complete and verified\n";
      return kExitFailure;
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
