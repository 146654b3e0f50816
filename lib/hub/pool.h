#pragma once
// A pool: a local directory of verified bundles (design.md §4).
//
//   POOL/pool.json                    which hub, which commit, which bundles (the truth)
//   POOL/bundles/<name>/<version>/    verified bundles, each installed atomically
//   POOL/blobs/sha256/<hex>           content-addressed files (bundle files are hard links)
//   POOL/.gaggle/                     lock, fetch cache, partial downloads
//
// pool.json is written atomically and last: a bundle directory that pool.json does not
// list (left by a killed pull) is not part of the pool and is reused or replaced by the
// next pull. Schema: manifests/pool.schema.json.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::hub {

inline constexpr int kPoolFormatVersion = 1;

struct PoolBundle {
  std::string name, version;
  std::string path;             // relative to the pool: bundles/<name>/<version>
  std::string principal;        // the trusted signer, as verified at pull time
  std::string key_fingerprint;  // "SHA256:..."
  std::string manifest_sha256;  // of manifest.json's bytes: identifies the exact bundle
  std::uint64_t bytes = 0;      // total size of its files
};

struct Pool {
  int format_version = kPoolFormatVersion;
  std::string hub;      // where it was pulled from
  std::string commit;   // the hub commit (git) or the index's sha256 (static index)
  std::string updated;  // UTC, ISO 8601
  std::vector<PoolBundle> bundles;  // sorted by name, then version

  const PoolBundle* find(const std::string& name, const std::string& version) const;
};

// Reads POOL/pool.json. Throws Error{not_found} when the pool has none, Error{invalid}
// (naming the file and field) when it is malformed, Error{unsupported} for a newer format.
Pool read_pool(const std::filesystem::path& pool_dir);
Pool parse_pool(const std::string& text, const std::string& source);
// Writes POOL/pool.json atomically (bundles sorted).
void write_pool(const std::filesystem::path& pool_dir, Pool pool);
std::string serialize_pool(const Pool& pool);

}  // namespace gaggle::hub
