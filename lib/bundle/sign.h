#pragma once
// Signing a bundle: an SSHSIG signature (namespace "gaggle-bundle") over the exact
// bytes of manifest.json, written to manifest.json.sig. The manifest lists the size and
// sha256 of every other file, so the signature covers the whole bundle.
#include <filesystem>
#include <string>

namespace gaggle::bundle {

struct SignOptions {
  // The private key (OpenSSH ed25519, unencrypted), or, when SSH_AUTH_SOCK is set, a
  // .pub or an encrypted private key whose key ssh-agent holds (the agent signs).
  // Empty = ~/.ssh/id_ed25519.
  std::filesystem::path key;
};

// Checks the manifest (schema) and that the files match it, signs, writes
// manifest.json.sig atomically, and returns the key's "SHA256:..." fingerprint.
// Throws Error{not_found|invalid|mismatch} for the bundle, Error{auth} for a key that
// cannot sign (encrypted without an agent: the hint says how to load it).
std::string sign_bundle(const std::filesystem::path& bundle_dir, const SignOptions& options);

// True when manifest.json.sig exists (says nothing about whether it verifies).
bool bundle_is_signed(const std::filesystem::path& bundle_dir);

// The default key: $HOME/.ssh/id_ed25519.
std::filesystem::path default_signing_key();

}  // namespace gaggle::bundle
