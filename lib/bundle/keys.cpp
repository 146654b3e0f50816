#include "bundle/keys.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "bundle/base64.h"
#include "bundle/detail/openssl.h"
#include "bundle/ssh_wire.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {
namespace {

constexpr std::string_view kAuthMagic("openssh-key-v1\0", 15);
constexpr std::string_view kKeyBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kKeyEnd = "-----END OPENSSH PRIVATE KEY-----";

using detail::MdCtx;
using detail::Pkey;

std::string openssl_error() {
  std::string text = detail::drain_openssl_errors();
  return text.empty() ? "unknown OpenSSL error" : text;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

// The binary body of an armoured openssh-key-v1 file.
std::string dearmor_private(std::string_view text, const std::string& source) {
  auto b = text.find(kKeyBegin);
  auto e = text.find(kKeyEnd);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b)
    throw_error(ErrorCode::invalid, "bundle", source + ": not an OpenSSH private key (no BEGIN/END OPENSSH PRIVATE KEY lines)",
                "PEM or PKCS#8 keys can be converted with: ssh-keygen -p -f KEY (it rewrites the key in OpenSSH format)");
  auto body = base64_decode_wrapped(text.substr(b + kKeyBegin.size(), e - b - kKeyBegin.size()));
  if (!body) throw_error(ErrorCode::invalid, "bundle", source + ": the private key's base64 is corrupt");
  if (body->compare(0, kAuthMagic.size(), kAuthMagic) != 0)
    throw_error(ErrorCode::invalid, "bundle", source + ": missing the \"openssh-key-v1\" magic");
  return body->substr(kAuthMagic.size());
}

}  // namespace

std::string PublicKey::fingerprint() const {
  io::Sha256 h;
  h.update(std::string_view(blob));
  return "SHA256:" + base64_encode(h.finish_raw(), /*pad=*/false);
}

std::string PublicKey::to_openssh() const {
  std::string line = type + " " + base64_encode(blob);
  if (!comment.empty()) line += " " + comment;
  return line;
}

std::string PublicKey::ed25519_raw() const {
  if (type != kEd25519)
    throw_error(ErrorCode::unsupported, "bundle", "key type '" + type + "' is not supported (only ssh-ed25519)",
                "make an Ed25519 key: gaggle keygen -f KEY (or ssh-keygen -t ed25519)");
  WireReader r(blob, "ssh-ed25519 public key");
  r.string("key type");
  std::string raw(r.string("ed25519 point"));
  r.expect_done("the ed25519 point");
  if (raw.size() != 32) throw_error(ErrorCode::invalid, "bundle", "ssh-ed25519 public key: the point is not 32 bytes");
  return raw;
}

PublicKey ed25519_public_key(std::string_view raw32, std::string comment) {
  WireWriter w;
  w.string(kEd25519);
  w.string(raw32);
  return PublicKey{std::string(kEd25519), w.bytes(), std::move(comment)};
}

PublicKey public_key_from_blob(std::string_view blob, const std::string& source) {
  WireReader r(blob, source);
  PublicKey key;
  key.type = std::string(r.string("key type"));
  key.blob = std::string(blob);
  if (key.type == kEd25519) {
    std::string_view raw = r.string("ed25519 point");
    if (raw.size() != 32) throw_error(ErrorCode::invalid, "bundle", source + ": the ed25519 point is not 32 bytes");
    r.expect_done("the ed25519 point");
  }
  return key;
}

PublicKey parse_public_key(std::string_view line, const std::string& source) {
  std::string text = trim(line);
  auto sp1 = text.find_first_of(" \t");
  if (sp1 == std::string::npos)
    throw_error(ErrorCode::invalid, "bundle", source + ": not an SSH public key line (expected 'TYPE BASE64 [COMMENT]')");
  std::string type = text.substr(0, sp1);
  auto start = text.find_first_not_of(" \t", sp1);
  auto sp2 = text.find_first_of(" \t", start);
  std::string b64 = text.substr(start, sp2 == std::string::npos ? std::string::npos : sp2 - start);
  auto blob = base64_decode(b64);
  if (!blob) throw_error(ErrorCode::invalid, "bundle", source + ": the key's base64 is corrupt");
  PublicKey key = public_key_from_blob(*blob, source);
  if (key.type != type)
    throw_error(ErrorCode::invalid, "bundle", source + ": the line says '" + type + "' but the key inside is '" + key.type + "'");
  if (sp2 != std::string::npos) key.comment = trim(std::string_view(text).substr(sp2));
  return key;
}

PublicKey read_public_key(const fs::path& path) {
  std::string text = io::read_file(path);
  if (looks_like_private_key(text)) return inspect_private_key(text, path.string()).pub;
  return parse_public_key(text, path.string());
}

bool looks_like_private_key(std::string_view text) {
  auto p = text.find_first_not_of(" \t\r\n");
  return p != std::string_view::npos && text.substr(p).starts_with("-----BEGIN ") &&
         text.find("PRIVATE KEY-----") != std::string_view::npos;
}

PrivateKeyFileInfo inspect_private_key(std::string_view text, const std::string& source) {
  std::string body = dearmor_private(text, source);
  WireReader r(body, source);
  std::string_view cipher = r.string("cipher name");
  std::string_view kdf = r.string("kdf name");
  r.string("kdf options");
  std::uint32_t nkeys = r.u32("number of keys");
  if (nkeys != 1) throw_error(ErrorCode::invalid, "bundle", source + ": holds " + std::to_string(nkeys) + " keys, expected 1");
  PrivateKeyFileInfo info;
  info.pub = public_key_from_blob(r.string("public key"), source);
  info.encrypted = cipher != "none" || kdf != "none";
  return info;
}

PrivateKey parse_private_key(std::string_view text, const std::string& source) {
  PrivateKeyFileInfo info = inspect_private_key(text, source);
  if (info.encrypted)
    throw_error(ErrorCode::auth, "bundle", source + ": the private key is encrypted with a passphrase",
                "load it into ssh-agent and sign through the agent: eval \"$(ssh-agent)\"; ssh-add " + source +
                    " (gaggle then signs through SSH_AUTH_SOCK with --key " + source + " or its .pub)");
  if (info.pub.type != kEd25519)
    throw_error(ErrorCode::unsupported, "bundle", source + ": key type '" + info.pub.type + "' is not supported (only ssh-ed25519)",
                "make an Ed25519 key: gaggle keygen -f KEY");
  std::string body = dearmor_private(text, source);
  WireReader r(body, source);
  r.string("cipher name");
  r.string("kdf name");
  r.string("kdf options");
  r.u32("number of keys");
  r.string("public key");
  std::string_view priv = r.string("private section");
  r.expect_done("the private section");
  if (priv.size() % 8 != 0) throw_error(ErrorCode::invalid, "bundle", source + ": the private section is not padded to 8 bytes");
  WireReader p(priv, source);
  if (p.u32("check int") != p.u32("check int"))
    throw_error(ErrorCode::invalid, "bundle", source + ": the private section's check numbers differ (corrupt key)");
  if (p.string("key type") != kEd25519) throw_error(ErrorCode::invalid, "bundle", source + ": the private key type differs from the public one");
  std::string_view pub = p.string("ed25519 public point");
  std::string_view secret = p.string("ed25519 secret");
  std::string comment(p.string("comment"));
  for (std::uint8_t i = 1; !p.done(); ++i)
    if (p.u8("padding") != i) throw_error(ErrorCode::invalid, "bundle", source + ": bad padding in the private section");
  if (pub.size() != 32 || secret.size() != 64 || secret.substr(32) != pub)
    throw_error(ErrorCode::invalid, "bundle", source + ": malformed ed25519 private key");
  PrivateKey key;
  key.seed = std::string(secret.substr(0, 32));
  key.pub = ed25519_public_key(pub, comment);
  if (!key.pub.same_key(info.pub)) throw_error(ErrorCode::invalid, "bundle", source + ": the public and private halves do not match");
  // The seed must really produce this public point.
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(key.seed.data()), 32));
  unsigned char derived[32];
  std::size_t len = sizeof derived;
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), derived, &len) != 1 || std::string_view(reinterpret_cast<char*>(derived), 32) != pub)
    throw_error(ErrorCode::invalid, "bundle", source + ": the private key does not produce its public key (corrupt key)");
  return key;
}

PrivateKey read_private_key(const fs::path& path) { return parse_private_key(io::read_file(path), path.string()); }

std::string format_private_key(const PrivateKey& key) {
  std::string raw = key.pub.ed25519_raw();
  unsigned char check_bytes[4];
  if (RAND_bytes(check_bytes, 4) != 1) throw_error(ErrorCode::io, "bundle", "OpenSSL could not make random bytes: " + openssl_error());
  std::uint32_t check = (std::uint32_t(check_bytes[0]) << 24) | (std::uint32_t(check_bytes[1]) << 16) |
                        (std::uint32_t(check_bytes[2]) << 8) | check_bytes[3];
  WireWriter priv;
  priv.u32(check);
  priv.u32(check);
  priv.string(kEd25519);
  priv.string(raw);
  priv.string(key.seed + raw);
  priv.string(key.pub.comment);
  for (std::uint8_t i = 1; priv.bytes().size() % 8 != 0; ++i) priv.u8(i);
  WireWriter w;
  w.raw(kAuthMagic);
  w.string("none");
  w.string("none");
  w.string("");
  w.u32(1);
  w.string(key.pub.blob);
  w.string(priv.bytes());
  return std::string(kKeyBegin) + "\n" + wrap_lines(base64_encode(w.bytes()), 70) + std::string(kKeyEnd) + "\n";
}

PrivateKey generate_ed25519_key(std::string comment) {
  unsigned char seed[32];
  if (RAND_bytes(seed, 32) != 1) throw_error(ErrorCode::io, "bundle", "OpenSSL could not make random bytes: " + openssl_error());
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32));
  unsigned char pub[32];
  std::size_t len = sizeof pub;
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), pub, &len) != 1)
    throw_error(ErrorCode::io, "bundle", "OpenSSL could not make an Ed25519 key: " + openssl_error());
  PrivateKey key;
  key.seed.assign(reinterpret_cast<char*>(seed), 32);
  key.pub = ed25519_public_key(std::string_view(reinterpret_cast<char*>(pub), 32), std::move(comment));
  return key;
}

PublicKey generate_ed25519_keypair(const fs::path& path, const std::string& comment) {
  fs::path pub_path = path.string() + ".pub";
  for (const auto& p : {path, pub_path}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(p, ec)))
      throw_error(ErrorCode::exists, "bundle", "'" + p.string() + "' already exists; refusing to overwrite a key",
                  "choose another path with -f, or delete the old key yourself if you really mean to replace it");
  }
  if (path.has_parent_path() && !fs::is_directory(path.parent_path()))
    throw_error(ErrorCode::not_found, "bundle", "directory '" + path.parent_path().string() + "' does not exist",
                "create it first (mkdir -p " + path.parent_path().string() + ")");
  PrivateKey key = generate_ed25519_key(comment);
  io::write_file_atomic(path, format_private_key(key), 0600);
  io::write_file_atomic(pub_path, key.pub.to_openssh() + "\n", 0644);
  return key.pub;
}

std::string ed25519_sign(const PrivateKey& key, std::string_view message) {
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(key.seed.data()),
                                         key.seed.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  std::size_t len = sizeof sig;
  if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    throw_error(ErrorCode::io, "bundle", "OpenSSL could not sign with Ed25519: " + openssl_error());
  return std::string(reinterpret_cast<char*>(sig), len);
}

bool ed25519_verify(const PublicKey& key, std::string_view message, std::string_view signature) {
  std::string raw = key.ed25519_raw();
  if (signature.size() != 64) return false;
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

}  // namespace gaggle::bundle
