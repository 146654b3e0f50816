#pragma once
// Publishing a bundle to a hub (design.md §4): sign it if it is unsigned, move large
// files to the HTTP blob store (re-signing the changed manifest), verify it, and add
// experts/<name>/<version>/ to the hub's main branch in one commit. Concurrent
// publishers are safe: a push that loses a race (non-fast-forward) fetches, rebuilds the
// commit on the new tip and retries with backoff; nothing is lost, nothing is forced.
//
// Transports: local path / file:// (the hub repository is updated in place with a
// compare-and-swap of refs/heads/main; no server hooks run), git://, http(s):// smart
// HTTP and ssh:// (through a cached clone, pushed with libgit2; the server's
// pre-receive hook runs). The user's bundle directory is never modified: all work
// happens on a staged copy.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hub/progress.h"

namespace gaggle::hub {

struct PublishOptions {
  std::string hub;                        // path, file://, git://, http(s)://, ssh://
  std::filesystem::path key;              // signing key: needed when the bundle is unsigned or blobs move
  std::filesystem::path trust_file;       // verify against it before pushing; empty: a local hub's
                                          // allowed_signers, else the key's own public key
  std::string blob_store;                 // http(s) base URL of the blob store (PUT <store>/<sha256>)
  std::uint64_t blob_threshold = 10'000'000;  // files of at least this many bytes go to the blob store
                                              // (safetensors files as their parts, each stored once)
  std::filesystem::path cache_dir;        // where remote hubs are cloned; empty: $XDG_CACHE_HOME/gaggle/hubs
  std::filesystem::path ca_file;          // private CA for https hubs and blob stores
  std::filesystem::path ssh_known_hosts;  // ssh:// hubs: the known_hosts file to trust alone
                                          // (empty: hub/known_hosts.h's defaults)
  std::filesystem::path delta_from;       // the previous version's bundle directory, already on the hub:
                                          // a tensor of the git tree that differs from its namesake there
                                          // in few elements goes as a sparse delta (bundle/tensor_delta.h)
  int max_attempts = 30;                  // pushes tried before giving up on a busy hub
  std::string message;                    // extra commit message text
  ProgressFn progress;
};

struct PublishResult {
  std::string name, version;
  std::string principal, key_fingerprint;  // who signed, as verified
  std::string commit;                      // the hub commit that added the bundle
  std::string tree_path;                   // experts/<name>/<version>
  int attempts = 0;                        // pushes it took (1 = no race)
  bool signed_now = false;                 // publish signed (or re-signed) the staged copy
  std::vector<std::string> blob_urls;      // files moved to the blob store (a parts_url for a file stored as its tensors)
  std::uint64_t bytes_uploaded = 0;        // blob bytes PUT (0 when the store already had them)
  std::uint64_t bytes_pushed = 0;          // git pack bytes sent (remote hubs)
  int deltas = 0;                          // tensors sent as sparse deltas (--delta-from)
  std::uint64_t delta_bytes_saved = 0;     // their whole size minus their deltas' size
};

// Throws Error{exists} when <name>@<version> is already on the hub, Error{auth} for a
// missing/untrusted key or a hook that refused the push, Error{network} for transport
// failures, Error{invalid|mismatch|not_found} for a bad bundle.
PublishResult publish_bundle(const std::filesystem::path& bundle_dir, const PublishOptions& options);

// The default cache: $XDG_CACHE_HOME/gaggle/hubs, else $HOME/.cache/gaggle/hubs.
std::filesystem::path default_hub_cache();

}  // namespace gaggle::hub
