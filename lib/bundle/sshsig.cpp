#include "bundle/sshsig.h"

#include <openssl/evp.h>

#include "bundle/base64.h"
#include "bundle/ssh_wire.h"
#include "io/error.h"

namespace gaggle::bundle {
namespace {

constexpr std::string_view kSshsigMagic = "SSHSIG";
constexpr std::string_view kSignatureBegin = "-----BEGIN SSH SIGNATURE-----";
constexpr std::string_view kSignatureEnd = "-----END SSH SIGNATURE-----";

std::string digest(std::string_view algorithm, std::string_view message) {
  const EVP_MD* md = algorithm == "sha512" ? EVP_sha512() : algorithm == "sha256" ? EVP_sha256() : nullptr;
  if (!md) throw_error(ErrorCode::unsupported, "bundle", "SSHSIG hash algorithm '" + std::string(algorithm) + "' is not supported");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(message.data(), message.size(), out, &len, md, nullptr) != 1)
    throw_error(ErrorCode::io, "bundle", "OpenSSL could not hash with " + std::string(algorithm));
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

std::string sshsig_signed_data(std::string_view ns, std::string_view hash_algorithm, std::string_view message) {
  WireWriter w;
  w.raw(kSshsigMagic);
  w.string(ns);
  w.string("");
  w.string(hash_algorithm);
  w.string(digest(hash_algorithm, message));
  return w.bytes();
}

SshSignature parse_sshsig(std::string_view text, const std::string& source) {
  auto b = text.find(kSignatureBegin);
  auto e = text.find(kSignatureEnd);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b)
    throw_error(ErrorCode::invalid, "bundle",
                source + ": not an SSH signature (no BEGIN/END SSH SIGNATURE lines; truncated or not a signature)",
                "sign the bundle again: gaggle sign BUNDLE --key KEY");
  auto blob = base64_decode_wrapped(text.substr(b + kSignatureBegin.size(), e - b - kSignatureBegin.size()));
  if (!blob) throw_error(ErrorCode::invalid, "bundle", source + ": the signature's base64 is corrupt (garbled signature)");
  WireReader r(*blob, source);
  if (r.raw(std::min<std::size_t>(kSshsigMagic.size(), r.remaining()), "magic") != kSshsigMagic)
    throw_error(ErrorCode::invalid, "bundle", source + ": missing the SSHSIG magic (garbled signature)");
  std::uint32_t version = r.u32("version");
  if (version != 1)
    throw_error(ErrorCode::unsupported, "bundle", source + ": SSHSIG version " + std::to_string(version) + " is not supported (only 1)");
  SshSignature sig;
  sig.key = public_key_from_blob(r.string("public key"), source + ": public key");
  sig.ns = std::string(r.string("namespace"));
  r.string("reserved");
  sig.hash_algorithm = std::string(r.string("hash algorithm"));
  std::string_view sig_blob = r.string("signature");
  r.expect_done("the signature");
  WireReader s(sig_blob, source + ": signature");
  sig.sig_type = std::string(s.string("signature type"));
  sig.sig = std::string(s.string("signature bytes"));
  s.expect_done("the signature bytes");
  if (sig.key.type.find("-cert-v01@openssh.com") != std::string::npos)
    throw_error(ErrorCode::unsupported, "bundle", source + ": signatures made with SSH certificates are not supported",
                "sign with the plain key, and list it in the allowed-signers file");
  if (sig.hash_algorithm != "sha512" && sig.hash_algorithm != "sha256")
    throw_error(ErrorCode::unsupported, "bundle", source + ": hash algorithm '" + sig.hash_algorithm + "' is not supported");
  return sig;
}

void verify_sshsig(const SshSignature& sig, std::string_view message, std::string_view expected_ns, const std::string& source) {
  if (sig.ns != expected_ns)
    throw_error(ErrorCode::auth, "bundle",
                source + ": signature is for namespace '" + sig.ns + "', expected '" + std::string(expected_ns) + "'",
                "a signature made for another purpose (e.g. git commits, -n " + sig.ns + ") is never accepted for bundles; "
                "sign with: gaggle sign BUNDLE --key KEY (or ssh-keygen -Y sign -n " + std::string(expected_ns) + ")");
  if (sig.key.type != kEd25519 || sig.sig_type != kEd25519)
    throw_error(ErrorCode::unsupported, "bundle",
                source + ": signature by a '" + sig.key.type + "' key; only ssh-ed25519 is supported");
  if (!ed25519_verify(sig.key, sshsig_signed_data(sig.ns, sig.hash_algorithm, message), sig.sig))
    throw_error(ErrorCode::auth, "bundle",
                source + ": signature does not match the signed bytes (they changed after signing, or the signature is corrupt)",
                "re-sign the bundle if you changed it on purpose; otherwise do not use it");
}

std::string local_ed25519_signer_blob(const PrivateKey& key, std::string_view data) {
  WireWriter w;
  w.string(kEd25519);
  w.string(ed25519_sign(key, data));
  return w.bytes();
}

std::string sign_sshsig(const PublicKey& key, const SshSigner& signer, std::string_view message, std::string_view ns) {
  const std::string hash = "sha512";
  std::string sig_blob = signer(sshsig_signed_data(ns, hash, message));
  WireWriter w;
  w.raw(kSshsigMagic);
  w.u32(1);
  w.string(key.blob);
  w.string(ns);
  w.string("");
  w.string(hash);
  w.string(sig_blob);
  return std::string(kSignatureBegin) + "\n" + wrap_lines(base64_encode(w.bytes()), 70) + std::string(kSignatureEnd) +
         "\n";
}

}  // namespace gaggle::bundle
