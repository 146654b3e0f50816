#pragma once
// SSH keys in OpenSSH's own formats: public keys ("ssh-ed25519 AAAA... comment", any
// type, compared by blob) and unencrypted Ed25519 private keys ("openssh-key-v1").
// Ed25519 arithmetic goes through OpenSSL (EVP_PKEY_ED25519).
//
// Errors: Error{not_found|io} for files, Error{invalid} for malformed keys (naming the
// file), Error{unsupported} for key types gaggle cannot sign or verify with, and
// Error{auth} for an encrypted private key (with a hint on loading it into ssh-agent).
#include <filesystem>
#include <string>
#include <string_view>

namespace gaggle::bundle {

inline constexpr std::string_view kEd25519 = "ssh-ed25519";

struct PublicKey {
  std::string type;     // "ssh-ed25519", "ssh-rsa", ...
  std::string blob;     // the SSH wire encoding: string type, then the key's fields
  std::string comment;  // free text, not part of the key

  // "SHA256:<unpadded base64 of sha256(blob)>", as ssh-keygen -l prints it.
  std::string fingerprint() const;
  // "ssh-ed25519 AAAA... comment" (no newline).
  std::string to_openssh() const;
  // The 32-byte Ed25519 point. Throws Error{unsupported} for another type.
  std::string ed25519_raw() const;
  bool same_key(const PublicKey& other) const { return blob == other.blob; }
};

// An Ed25519 private key: the 32-byte seed and its public half.
struct PrivateKey {
  std::string seed;
  PublicKey pub;
};

PublicKey ed25519_public_key(std::string_view raw32, std::string comment = {});
// Parses a blob (wire format); `source` names it in errors.
PublicKey public_key_from_blob(std::string_view blob, const std::string& source);
// Parses one "type base64 [comment]" line.
PublicKey parse_public_key(std::string_view line, const std::string& source);
PublicKey read_public_key(const std::filesystem::path& path);

// True when `text` starts like an OpenSSH private key file.
bool looks_like_private_key(std::string_view text);
// The public key stored in the clear in an openssh-key-v1 file (works for encrypted
// keys too), and whether the private part is encrypted.
struct PrivateKeyFileInfo {
  PublicKey pub;
  bool encrypted = false;
};
PrivateKeyFileInfo inspect_private_key(std::string_view text, const std::string& source);
// Parses an unencrypted Ed25519 openssh-key-v1 file.
PrivateKey parse_private_key(std::string_view text, const std::string& source);
PrivateKey read_private_key(const std::filesystem::path& path);
// The armoured openssh-key-v1 text (unencrypted).
std::string format_private_key(const PrivateKey& key);

// A fresh key from the OS random generator.
PrivateKey generate_ed25519_key(std::string comment);
// Writes PATH (mode 0600, openssh-key-v1) and PATH.pub; refuses (Error{exists}) to
// overwrite either. Returns the public key.
PublicKey generate_ed25519_keypair(const std::filesystem::path& path, const std::string& comment);

// Raw Ed25519 (64-byte signature) through OpenSSL.
std::string ed25519_sign(const PrivateKey& key, std::string_view message);
bool ed25519_verify(const PublicKey& key, std::string_view message, std::string_view signature);

}  // namespace gaggle::bundle
