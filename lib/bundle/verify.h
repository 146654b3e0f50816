#pragma once
// Verifying a bundle: signature over manifest.json's exact bytes, signer trusted by an
// OpenSSH allowed-signers file for namespace "gaggle-bundle" at this time, manifest
// valid, and the directory holding exactly the listed files with their sizes and
// sha256. Writes nothing.
#include <cstdint>
#include <filesystem>
#include <string>

#include "bundle/manifest.h"

namespace gaggle::bundle {

inline constexpr std::size_t kSignatureMaxBytes = 64 * 1024;

struct VerifyOptions {
  std::filesystem::path trust_file;  // OpenSSH allowed_signers
  std::int64_t now = 0;              // unix time, 0 = current
  bool allow_remote_files = false;   // files with a url may be absent (hub trees)
  std::string principal{};           // "" = any; else the signer's entry must match it (ssh-keygen -I)
};

struct VerifyResult {
  std::string name, version, principal, key_fingerprint;
  Manifest manifest;
};

// Throws Error{auth|mismatch|invalid|not_found|unsupported} naming the first problem.
VerifyResult verify_bundle(const std::filesystem::path& bundle_dir, const VerifyOptions& options);

}  // namespace gaggle::bundle
