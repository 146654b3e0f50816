#pragma once
// One rule for trust (issue #16): every verb that loads a pool verifies its bundles the
// same way — signature, trusted signer, every file's size and sha256 (and each tensor's,
// bundle/tensor_index.h) — against the trust file the pool was pulled with, kept in the
// pool as POOL/.gaggle/allowed_signers by `gaggle pull`, or an explicit one.
//
// Verifying is cached by file identity: POOL/.gaggle/verified.json remembers, per
// bundle, the trust file's sha256, the manifest's sha256 and each file's (device, inode,
// size, mtime). A bundle whose files all still have that identity is not hashed again;
// any change (a replaced, edited or touched file, another trust file) verifies it anew.
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::hub {

inline constexpr const char* kPoolTrustFile = ".gaggle/allowed_signers";
inline constexpr const char* kPoolVerifiedCache = ".gaggle/verified.json";

struct VerifiedBundle {
  std::string name, version;
  std::filesystem::path dir;
  std::string principal, key_fingerprint;
  bool from_cache = false;  // identity unchanged since the last verification
};

// The trust file a pool's bundles are verified against: `explicit_trust` when given,
// else the pool's own (.gaggle/allowed_signers from pull, else POOL/allowed_signers). Throws Error{auth} when there is neither.
std::filesystem::path pool_trust_file(const std::filesystem::path& pool_dir, const std::filesystem::path& explicit_trust);

// Verifies every bundle pool.json lists (or only those whose directories are in `only`,
// when not empty). Throws Error{auth|mismatch|not_found|invalid} naming the pool and the
// first bundle that fails; updates the cache atomically.
std::vector<VerifiedBundle> verify_pool(const std::filesystem::path& pool_dir, const std::filesystem::path& explicit_trust,
                                        const std::vector<std::filesystem::path>& only = {});

}  // namespace gaggle::hub
