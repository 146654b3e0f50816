#pragma once
// OpenSSH's SSHSIG signatures (PROTOCOL.sshsig), the format of `ssh-keygen -Y sign`:
//   blob   = "SSHSIG" u32(1) string(pubkey) string(namespace) string("") string(hash) string(sig)
//   signed = "SSHSIG" string(namespace) string("") string(hash) string(H(message))
// armoured between "-----BEGIN SSH SIGNATURE-----" lines (base64, 70 columns).
// gaggle signs with hash "sha512" (as ssh-keygen does) and verifies sha256 and sha512.
#include <functional>
#include <string>
#include <string_view>

#include "bundle/keys.h"

namespace gaggle::bundle {

inline constexpr std::string_view kBundleNamespace = "gaggle-bundle";

struct SshSignature {
  PublicKey key;               // the signer's public key, as the signature names it
  std::string ns;              // namespace
  std::string hash_algorithm;  // "sha256" or "sha512"
  std::string sig_type;        // "ssh-ed25519"
  std::string sig;             // the raw signature bytes
};

// The bytes the key signs for `message`.
std::string sshsig_signed_data(std::string_view ns, std::string_view hash_algorithm, std::string_view message);

// Parses an armoured signature. Throws Error{invalid} naming `source` and what is
// wrong (armour, base64, magic, version, truncated field); Error{unsupported} for a
// hash or key type gaggle does not verify.
SshSignature parse_sshsig(std::string_view armoured, const std::string& source);

// Checks namespace and signature over `message`. Throws Error{auth} naming `source`.
void verify_sshsig(const SshSignature& sig, std::string_view message, std::string_view expected_ns, const std::string& source);

// Produces an SSH signature blob (string type, string sig) over the data it is given:
// a local key or an ssh-agent.
using SshSigner = std::function<std::string(std::string_view data)>;
std::string local_ed25519_signer_blob(const PrivateKey& key, std::string_view data);

// Signs `message` and returns the armoured SSHSIG text.
std::string sign_sshsig(const PublicKey& key, const SshSigner& signer, std::string_view message, std::string_view ns);

}  // namespace gaggle::bundle
