// gaggle publish — sign (if needed), verify and push an expert bundle to a hub
// (lib/hub/publish.h). Never prompts; credentials come from the environment, git's
// credential helpers or ssh-agent.
#include <iostream>

#include <nlohmann/json.hpp>

#include "hub/publish.h"
#include "hub_progress.h"
#include "io/error.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct PublishCliOptions {
  std::string bundle, hub, key, trust, blob_store, blob_threshold = "10MB", cache, ca_file, known_hosts, message, delta_from;
  int max_attempts = 30;
  bool json = false, quiet = false;
};

// "10MB" / "512KiB" / "1000" -> bytes (KB/MB/GB powers of 1000, KiB/MiB/GiB of 1024).
std::uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0) throw Error(ErrorCode::usage, "cli", "--blob-threshold '" + text + "' is not a size", "use e.g. 10MB or 1048576");
  std::string unit = text.substr(pos);
  struct {
    const char* name;
    std::uint64_t factor;
  } units[] = {{"", 1},          {"B", 1},           {"K", 1000},        {"KB", 1000},  {"M", 1000000},
               {"MB", 1000000},  {"G", 1000000000},  {"GB", 1000000000}, {"KiB", 1024}, {"MiB", 1 << 20},
               {"GiB", 1 << 30}};
  for (const auto& u : units)
    if (unit == u.name) return n * u.factor;
  throw Error(ErrorCode::usage, "cli", "--blob-threshold '" + text + "' has an unknown unit", "use B, KB, MB, GB, KiB, MiB or GiB");
}

}  // namespace

Runner setup_publish(CLI::App& sub) {
  auto opt = std::make_shared<PublishCliOptions>();
  sub.add_option("bundle", opt->bundle, "The bundle directory (manifest.json, adapter.safetensors, ...)")->required();
  sub.add_option("--hub", opt->hub, "The hub: a path, file://, git://, http(s):// or ssh:// URL")->required();
  sub.add_option("--key", opt->key, "Signing key, used when the bundle is unsigned or files move to the blob store (default ~/.ssh/id_ed25519)");
  sub.add_option("--trust", opt->trust, "Allowed-signers file to verify against before pushing (default: trust --key's public key)");
  sub.add_option("--blob-store", opt->blob_store, "HTTP(S) blob store for large files (PUT <store>/<sha256>; a safetensors file goes as its header and tensors, each stored once)");
  sub.add_option("--blob-threshold", opt->blob_threshold, "Files this size or larger go to the blob store")->capture_default_str();
  sub.add_option("--delta-from", opt->delta_from,
                 "The previous version's bundle directory (already on the hub): a tensor that differs from its namesake "
                 "there in few elements is sent as a sparse delta, rebuilt and checked bit for bit on pull");
  sub.add_option("--cache", opt->cache, "Where clones of remote hubs are kept (default ~/.cache/gaggle/hubs)");
  sub.add_option("--ca-file", opt->ca_file, "PEM file of a private CA for https hubs and blob stores");
  sub.add_option("--ssh-known-hosts", opt->known_hosts,
                 "ssh:// hubs: the known_hosts file listing the hub's host key (default $GAGGLE_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts)");
  sub.add_option("--max-attempts", opt->max_attempts, "Pushes to try when others publish at the same time")->capture_default_str();
  sub.add_option("-m,--message", opt->message, "Extra text for the hub commit message");
  sub.add_flag("--json", opt->json, "Print the result as JSON (for scripts)");
  sub.add_flag("-q,--quiet", opt->quiet, "No progress bar");
  set_example(sub,
              "  gaggle publish experts/sst2 --hub file:///srv/hub.git --key ~/.ssh/id_ed25519\n"
              "  gaggle publish experts/big --hub https://hub.example/hub.git --key key \\\n"
              "      --blob-store https://blobs.example/sha256 --json\n"
              "  gaggle publish experts/sst2 --hub ssh://git@hub.example/srv/hub.git   # key from ssh-agent\n"
              "  gaggle publish experts/sst2-1.1 --hub /srv/hub.git --delta-from pool/bundles/sst2/1.0.0");
  return [opt]() -> int {
    hub::PublishOptions o;
    o.hub = opt->hub;
    o.key = opt->key;
    o.trust_file = opt->trust;
    o.blob_store = opt->blob_store;
    o.blob_threshold = parse_size(opt->blob_threshold);
    o.cache_dir = opt->cache;
    o.ca_file = opt->ca_file;
    o.ssh_known_hosts = opt->known_hosts;
    o.max_attempts = std::max(1, opt->max_attempts);
    o.message = opt->message;
    o.delta_from = opt->delta_from;
    o.progress = hub_progress_bar(opt->quiet || opt->json);
    hub::PublishResult r = hub::publish_bundle(opt->bundle, o);
    hub_progress_done();
    if (opt->json) {
      nlohmann::ordered_json out = {{"name", r.name},
                                    {"version", r.version},
                                    {"hub", opt->hub},
                                    {"path", r.tree_path},
                                    {"commit", r.commit},
                                    {"principal", r.principal},
                                    {"key_fingerprint", r.key_fingerprint},
                                    {"attempts", r.attempts},
                                    {"signed_now", r.signed_now},
                                    {"blobs", r.blob_urls},
                                    {"bytes_uploaded", r.bytes_uploaded},
                                    {"bytes_pushed", r.bytes_pushed},
                                    {"deltas", r.deltas},
                                    {"delta_bytes_saved", r.delta_bytes_saved}};
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << "published " << r.name << "@" << r.version << " to " << opt->hub << " (" << r.tree_path << ", commit "
                << r.commit.substr(0, 12) << ", signed by " << r.principal << ")\n";
      for (const auto& url : r.blob_urls) std::cout << "  blob: " << url << "\n";
      if (r.deltas)
        std::cout << "  " << r.deltas << " tensors sent as deltas against " << opt->delta_from << " ("
                  << human_bytes(r.delta_bytes_saved) << " saved)\n";
      if (r.attempts > 1) std::cout << "  the hub moved meanwhile: landed on attempt " << r.attempts << "\n";
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
