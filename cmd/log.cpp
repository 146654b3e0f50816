// gaggle log — the versions of one expert on a hub: verified signer, date, and what
// changed against the version before, tensor by tensor (lib/hub/log.h).
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "hub/log.h"
#include "hub_progress.h"
#include "io/terminal_text.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

std::string utc(std::int64_t t) {
  if (t == 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "gate ×8, avg_act ×8": changed and added tensors grouped by their last name part.
std::string what_changed(const bundle::BundleDiff& d) {
  std::map<std::string, int> kinds;
  for (const auto& f : d.files) {
    if (!f.has_tensors) {
      if (f.change != bundle::Change::unchanged) ++kinds[f.path];
      continue;
    }
    for (const auto& t : f.tensors)
      if (t.change != bundle::Change::unchanged) ++kinds[t.name.substr(t.name.rfind('.') + 1)];
  }
  std::string out;
  for (const auto& [k, n] : kinds) out += (out.empty() ? "" : ", ") + k + " x" + std::to_string(n);
  return io::terminal_safe(out);  // tensor and file names are the publisher's
}

}  // namespace

Runner setup_log(CLI::App& sub) {
  auto o = std::make_shared<hub::LogOptions>();
  auto json = std::make_shared<bool>(false);
  sub.add_option("name", o->name, "The expert's name")->required();
  sub.add_option("--hub", o->hub, "The hub (path, file://, git://, http(s)://, ssh://, or a static pool.json)")->required();
  sub.add_option("--trust", o->trust_file, "Allowed-signers file: versions are verified before they are shown")->required();
  sub.add_option("--ca-file", o->ca_file, "PEM file of a private CA for https hubs");
  sub.add_option("--ssh-known-hosts", o->ssh_known_hosts, "ssh:// hubs: the known_hosts file to trust alone");
  sub.add_flag("--json", *json, "Print the history as JSON");
  set_example(sub, "  gaggle log sst2 --hub https://hub.example/git/hub.git --trust allowed_signers");
  return [o, json]() -> int {
    auto versions = hub::expert_log(*o);
    if (*json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& v : versions) {
        nlohmann::json j = {{"version", v.version}, {"verified", v.verified}};
        if (!v.verified) j["reason"] = v.reason;
        if (v.verified) j["principal"] = v.principal, j["key_fingerprint"] = v.key_fingerprint;
        if (!v.commit.empty()) j["commit"] = v.commit, j["published"] = utc(v.time);
        if (v.verified && !v.first) j["changes"] = v.changes.to_json(false);
        list.push_back(std::move(j));
      }
      std::cout << nlohmann::json{{"name", o->name}, {"hub", o->hub}, {"versions", list}}.dump(2) << "\n";
      return kExitSuccess;
    }
    for (const auto& v : versions) {
      std::string nv = o->name + "@" + v.version;
      if (!v.verified) {
        std::printf("%-24s  %-20s  REJECTED: %s\n", nv.c_str(), utc(v.time).c_str(),
                    io::terminal_safe(v.reason).c_str());
        continue;
      }
      std::printf("%-24s  %-20s  %s", nv.c_str(), utc(v.time).c_str(), v.principal.c_str());
      if (v.first) {
        std::printf("  (first version)\n");
        continue;
      }
      const auto& d = v.changes;
      std::printf("  %d unchanged, %d changed, %d added, %d removed; %s new", d.unchanged, d.changed, d.added, d.removed,
                  human_bytes(d.changed_bytes).c_str());
      std::string what = what_changed(d);
      if (!what.empty()) std::printf(" (%s)", what.c_str());
      std::printf("\n");
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
