#pragma once
// Pulling a pool from a hub (design.md §4): fetch the hub (git, incremental), or read a
// static HTTP(S) index (pool.json + bundles served by any web server); then, for each
// bundle not yet in the pool, gather its files (from the git tree, the blob store or the
// index; downloads resume with Range and are retried; a safetensors file the pool holds
// some tensors of is rebuilt from those and only the missing tensors are fetched, as
// blob-store parts or byte ranges), check every file's sha256 and
// size, verify the bundle (signature, trusted signer, hashes, schema, and that it sits
// at experts/<its name>/<its version>), and install it atomically. pool.json is
// written last, atomically. A bundle that fails is reported and skipped, never
// half-installed; a kill -9 at any moment leaves the previous pool.json in force.
// Static indexes are fetched conditionally (If-None-Match / If-Modified-Since with the
// validators of the last pull, detail/index_cache.h): a pull that finds nothing new
// transfers nothing; a server that ignores the conditions costs the index's bytes.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hub/pool.h"
#include "hub/progress.h"

namespace gaggle::hub {

struct PullOptions {
  std::string hub;                    // path, file://, git://, http(s):// git, ssh://, or http(s)://.../pool.json
  std::filesystem::path pool_dir;     // created if missing
  std::filesystem::path trust_file;   // allowed signers (OpenSSH format); required
  std::filesystem::path ca_file;      // private CA for https (TLS is always verified)
  std::filesystem::path ssh_known_hosts;  // ssh:// hubs: the known_hosts file to trust alone
                                          // (empty: hub/known_hosts.h's defaults)
  std::vector<std::string> only;      // names or name@version; empty = every bundle
  int retries = 4;                    // extra attempts for a failed download
  ProgressFn progress;
};

struct PulledBundle {
  std::string name, version;
  std::string status;  // "installed", "unchanged" or "rejected"
  std::string reason;  // why it was rejected
  std::string principal;
};

struct PullResult {
  std::string hub, commit;
  std::vector<PulledBundle> bundles;  // in hub order
  int installed = 0, unchanged = 0, rejected = 0;
  std::uint64_t git_bytes = 0;    // pack bytes received from the git hub
  std::uint64_t git_objects = 0;  // objects received
  std::uint64_t http_bytes = 0;   // bytes received over HTTP (index, manifests, blobs, tensor parts)
  std::uint64_t reused_bytes = 0; // tensor bytes taken from files the pool already held instead of downloaded
  std::uint64_t index_bytes = 0;  // static index: bytes of pool.json received (0 when not modified)
  bool index_not_modified = false;  // static index: the server said 304, the cached copy was used
};

// Throws Error for what stops the whole pull (hub unreachable, bad trust file, a
// malformed index, the pool locked by a bad pool.json); per-bundle failures are in
// the result (status "rejected").
PullResult pull_pool(const PullOptions& options);

}  // namespace gaggle::hub
