#pragma once
// Garbage in a blob store (issue #16: `gaggle hub gc`): the blobs of an HTTP(S) blob store
// (files named by their sha256, PUT by `gaggle publish --blob-store`) that no published
// manifest references — uploads of publishes that were killed or refused before their
// manifest reached the hub.
//
// Run where the hub repository and the store's directory are (the server). A blob is
// removed only when (1) no manifest on the hub's main branch lists it, read before the
// store is listed, and (2) it is older than the grace period. A concurrent publish PUTs its
// blobs first and pushes the manifest after: its blobs are younger than the grace period
// until long after the push, so gc never removes a blob a publish is about to reference
// unless that publish takes longer than the grace period (default one day). Only files
// named like a sha256 are considered; nothing else in the directory is touched. A blob a
// manifest lists that the store lacks is reported (pull would fail on it).
//
// The git repository itself needs no gaggle gc: versions are never deleted (the hub
// denies deletes and non-fast-forwards) and a refused push's objects stay in git's
// quarantine; `git gc` prunes what git itself leaves.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::hub {

struct BlobGcOptions {
  std::filesystem::path hub;       // the hub repository (a local path)
  std::filesystem::path blob_dir;  // the blob store's directory
  std::chrono::seconds grace{24 * 3600};
  bool dry_run = false;
};

struct GcBlob {
  std::string sha256;
  std::uint64_t bytes = 0;
};

struct BlobGcReport {
  std::size_t manifests = 0;       // manifests read on the hub
  std::size_t referenced = 0;      // distinct blobs they list
  std::vector<GcBlob> removed;     // (or, with dry_run, that would be)
  std::uint64_t removed_bytes = 0;
  std::size_t kept_referenced = 0, kept_young = 0;
  std::vector<std::string> missing;  // listed by a manifest, absent from the store
};

// Throws Error{not_found} (no hub, no directory), Error{invalid} (a manifest on the hub
// that does not parse, naming it), Error{io}.
BlobGcReport gc_blob_store(const BlobGcOptions& options);

// "90", "90s", "15m", "24h", "7d" -> seconds. Throws Error{usage}.
std::chrono::seconds parse_duration(const std::string& text);

}  // namespace gaggle::hub
