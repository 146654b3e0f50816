#include "hub/pool_trust.h"

#include <sys/stat.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "bundle/verify.h"
#include "hub/pool.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

// (device, inode, size, mtime in ns) of every regular file of a bundle directory.
nlohmann::json identities(const fs::path& dir) {
  nlohmann::json out = nlohmann::json::object();
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;
    const long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    out[p.lexically_relative(dir).generic_string()] = {static_cast<unsigned long long>(st.st_dev),
                                                       static_cast<unsigned long long>(st.st_ino),
                                                       static_cast<long long>(st.st_size), mtime};
  }
  return out;
}

}  // namespace

fs::path pool_trust_file(const fs::path& pool_dir, const fs::path& explicit_trust) {
  if (!explicit_trust.empty()) return explicit_trust;
  fs::path own = pool_dir / kPoolTrustFile;
  std::error_code ec;
  if (fs::is_regular_file(own, ec)) return own;
  // A pool assembled by hand keeps its trust file beside pool.json (assemble's default).
  if (fs::is_regular_file(pool_dir / "allowed_signers", ec)) return pool_dir / "allowed_signers";
  throw Error(ErrorCode::auth, "hub",
              "pool '" + pool_dir.string() + "' records no trust file, so its bundles cannot be verified",
              "pass --trust ALLOWED_SIGNERS, or pull the pool again with this gaggle (it keeps the trust file in the pool)");
}

std::vector<VerifiedBundle> verify_pool(const fs::path& pool_dir, const fs::path& explicit_trust,
                                        const std::vector<fs::path>& only) {
  const Pool pool = read_pool(pool_dir);
  const fs::path trust = pool_trust_file(pool_dir, explicit_trust);
  const std::string trust_sha = io::sha256_file_hex(trust);
  const fs::path cache_path = pool_dir / kPoolVerifiedCache;
  nlohmann::json cache = nlohmann::json::object();
  std::error_code ec;
  if (fs::is_regular_file(cache_path, ec)) {
    try {
      cache = io::read_json_file(cache_path);
    } catch (const Error&) {
      cache = nlohmann::json::object();  // a damaged cache only costs a full verification
    }
    if (!cache.is_object() || cache.value("trust_sha256", "") != trust_sha) cache = nlohmann::json::object();
  }
  nlohmann::json next = {{"trust_sha256", trust_sha}, {"bundles", nlohmann::json::object()}};
  if (cache.contains("bundles") && cache["bundles"].is_object()) next["bundles"] = cache["bundles"];

  auto wanted = [&](const fs::path& dir) {
    if (only.empty()) return true;
    for (const auto& o : only)
      if (fs::weakly_canonical(o, ec) == fs::weakly_canonical(dir, ec)) return true;
    return false;
  };
  std::vector<VerifiedBundle> out;
  bool changed = false;
  for (const auto& b : pool.bundles) {
    const fs::path dir = pool_dir / b.path;
    if (!wanted(dir)) continue;
    VerifiedBundle v{b.name, b.version, dir, "", "", false};
    const std::string key = b.path;
    const nlohmann::json ids = identities(dir);
    const nlohmann::json* hit = next["bundles"].contains(key) ? &next["bundles"][key] : nullptr;
    if (hit && hit->is_object() && hit->value("manifest_sha256", "") == b.manifest_sha256 && hit->contains("files") &&
        (*hit)["files"] == ids) {
      v.principal = hit->value("principal", "");
      v.key_fingerprint = hit->value("key_fingerprint", "");
      v.from_cache = true;
      out.push_back(std::move(v));
      continue;
    }
    bundle::VerifyResult r;
    try {
      r = bundle::verify_bundle(dir, bundle::VerifyOptions{trust, 0, false});
    } catch (const Error& e) {
      throw e.with_context("pool '" + pool_dir.string() + "': bundle " + b.name + "@" + b.version);
    }
    if (r.name != b.name || r.version != b.version ||
        io::sha256_file_hex(dir / "manifest.json") != b.manifest_sha256)
      throw Error(ErrorCode::mismatch, "hub",
                  "pool '" + pool_dir.string() + "': bundle " + b.name + "@" + b.version +
                      " is not the bundle pool.json lists (its manifest changed)",
                  "pull the pool again");
    v.principal = r.principal;
    v.key_fingerprint = r.key_fingerprint;
    next["bundles"][key] = {{"manifest_sha256", b.manifest_sha256},
                            {"principal", r.principal},
                            {"key_fingerprint", r.key_fingerprint},
                            {"files", ids}};
    changed = true;
    out.push_back(std::move(v));
  }
  if (changed) {
    try {
      io::write_json_file_atomic(cache_path, next);
    } catch (const Error&) {
      // A read-only pool still verifies; it just cannot remember it.
    }
  }
  return out;
}

}  // namespace gaggle::hub
