#include "bundle/model_signing.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "bundle/base64.h"
#include "bundle/detail/openssl.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/sha256.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace gaggle::bundle {
namespace {

constexpr std::size_t kMaxSignatureBytes = 1 << 20;
constexpr const char* kBundleMediaPrefix = "application/vnd.dev.sigstore.bundle";
constexpr const char* kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
constexpr const char* kInTotoType = "application/vnd.in-toto+json";
constexpr const char* kStatementType = "https://in-toto.io/Statement/v1";
constexpr const char* kPredicateType = "https://model_signing/signature/v1.0";

using detail::Bio;
using detail::MdCtx;
using detail::Pkey;

Pkey load_pem_key(const fs::path& path, bool private_key) {
  std::string text = io::read_file(path);
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  EVP_PKEY* raw = private_key ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                              : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!raw)
    throw_error(ErrorCode::invalid, "bundle",
                path.string() + ": not a PEM " + (private_key ? "private key (or it is encrypted)" : "public key") +
                    ": " + detail::drain_openssl_errors(),
                private_key ? "make one with: openssl ecparam -genkey -name secp384r1 -noout -out key.pem"
                            : "the public key is the 'BEGIN PUBLIC KEY' block: openssl ec -in key.pem -pubout");
  Pkey key(raw);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_EC)
    throw_error(ErrorCode::unsupported, "bundle", path.string() + ": only elliptic-curve (ECDSA) keys are supported for model_signing");
  return key;
}

// The curve's hash and the Sigstore key-details name.
std::pair<const EVP_MD*, std::string> curve_of(EVP_PKEY* key, const std::string& source) {
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1)
    throw_error(ErrorCode::invalid, "bundle", source + ": cannot read the key's curve");
  std::string g(group);
  if (g == "prime256v1" || g == "P-256" || g == "secp256r1") return {EVP_sha256(), "PKIX_ECDSA_P256_SHA_256"};
  if (g == "secp384r1" || g == "P-384") return {EVP_sha384(), "PKIX_ECDSA_P384_SHA_384"};
  if (g == "secp521r1" || g == "P-521") return {EVP_sha512(), "PKIX_ECDSA_P521_SHA_512"};
  throw_error(ErrorCode::unsupported, "bundle", source + ": curve '" + g + "' is not supported (P-256, P-384, P-521)");
}

std::string spki_der(EVP_PKEY* key) {
  int n = i2d_PUBKEY(key, nullptr);
  if (n <= 0)
    throw_error(ErrorCode::invalid, "bundle", "cannot encode the public key: " + detail::drain_openssl_errors());
  std::string der(static_cast<std::size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_PUBKEY(key, &p);
  return der;
}

std::string public_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string fingerprint_of(EVP_PKEY* key) { return "sha256:" + io::sha256_hex(std::string_view(spki_der(key))); }

bool is_under(const fs::path& p, const fs::path& root) {
  auto pi = p.begin(), ri = root.begin();
  for (; ri != root.end(); ++ri, ++pi)
    if (pi == p.end() || *pi != *ri) return false;
  return true;
}

// sha256 of every file of the model, keyed by '/'-separated relative path ("." for a file).
std::map<std::string, std::string> hash_model(const fs::path& model, const fs::path& signature,
                                              const std::vector<fs::path>& ignore_paths) {
  std::error_code ec;
  auto st = fs::symlink_status(model, ec);
  if (ec || !fs::exists(st)) throw_error(ErrorCode::not_found, "bundle", "model '" + model.string() + "' does not exist");
  std::map<std::string, std::string> out;
  if (fs::is_regular_file(st)) {
    out["."] = io::sha256_file_hex(model);
    return out;
  }
  if (!fs::is_directory(st)) throw_error(ErrorCode::invalid, "bundle", "model '" + model.string() + "' is not a file or directory");
  fs::path root = fs::weakly_canonical(model);
  std::vector<fs::path> ignored;
  for (const char* git : {".git", ".gitattributes", ".github", ".gitignore"}) ignored.push_back(root / git);
  if (!signature.empty()) ignored.push_back(fs::weakly_canonical(signature));
  for (const auto& p : ignore_paths) {
    ignored.push_back(fs::weakly_canonical(p));
    if (p.is_relative()) ignored.push_back(fs::weakly_canonical(root / p));
  }
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    fs::path abs = it->path();
    bool skip = std::any_of(ignored.begin(), ignored.end(), [&](const fs::path& ig) { return is_under(abs, ig); });
    if (skip) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    auto est = it->symlink_status();
    std::string rel = abs.lexically_relative(root).generic_string();
    if (fs::is_symlink(est))
      throw_error(ErrorCode::invalid, "bundle", "'" + rel + "' in '" + model.string() + "' is a symbolic link (allow_symlinks is false)");
    if (fs::is_directory(est)) continue;
    if (!fs::is_regular_file(est)) throw_error(ErrorCode::invalid, "bundle", "'" + rel + "' is not a regular file");
    out[rel] = io::sha256_file_hex(abs);
  }
  return out;
}

std::string subject_digest(const std::map<std::string, std::string>& resources, const std::string& source) {
  io::Sha256 h;
  for (const auto& [name, hex] : resources) {
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw_error(ErrorCode::invalid, "bundle", source + ": resource '" + name + "' has a malformed sha256 digest");
    std::string raw;
    for (std::size_t i = 0; i < 64; i += 2) raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    h.update(std::string_view(raw));
  }
  return h.finish_hex();
}

const json& field(const json& j, const char* name, const std::string& source, const std::string& where) {
  if (!j.is_object() || !j.contains(name))
    throw_error(ErrorCode::invalid, "bundle", source + ": " + where + " has no '" + name + "'", "is this a model_signing v1.0 signature?");
  return j[name];
}

std::string string_field(const json& j, const char* name, const std::string& source, const std::string& where) {
  const json& v = field(j, name, source, where);
  if (!v.is_string()) throw_error(ErrorCode::invalid, "bundle", source + ": " + where + "/" + name + " is not a string");
  return v.get<std::string>();
}

}  // namespace

std::string dsse_pae(const std::string& payload_type, const std::string& payload) {
  return "DSSEv1 " + std::to_string(payload_type.size()) + " " + payload_type + " " + std::to_string(payload.size()) + " " + payload;
}

ModelSigningResult verify_model_signing(const fs::path& model, const ModelSigningVerifyOptions& options) {
  const std::string source = options.signature.string();
  std::error_code ec;
  auto size = fs::file_size(options.signature, ec);
  if (ec) throw_error(ErrorCode::not_found, "bundle", "cannot read signature '" + source + "': " + ec.message());
  if (size > kMaxSignatureBytes) throw_error(ErrorCode::invalid, "bundle", source + ": is " + std::to_string(size) + " bytes; the limit is 1 MB");
  json bundle = io::read_json_file(options.signature);
  std::string media = string_field(bundle, "mediaType", source, "the bundle");
  if (!media.starts_with(kBundleMediaPrefix))
    throw_error(ErrorCode::invalid, "bundle", source + ": mediaType '" + media + "' is not a Sigstore bundle");
  const json& env = field(bundle, "dsseEnvelope", source, "the bundle");
  std::string payload_type = string_field(env, "payloadType", source, "/dsseEnvelope");
  if (payload_type != kInTotoType)
    throw_error(ErrorCode::unsupported, "bundle", source + ": payloadType '" + payload_type + "' is not in-toto");
  auto payload = base64_decode(string_field(env, "payload", source, "/dsseEnvelope"));
  if (!payload) throw_error(ErrorCode::invalid, "bundle", source + ": /dsseEnvelope/payload is not valid base64");
  const json& sigs = field(env, "signatures", source, "/dsseEnvelope");
  if (!sigs.is_array() || sigs.empty()) throw_error(ErrorCode::invalid, "bundle", source + ": /dsseEnvelope/signatures is empty");

  Pkey key = load_pem_key(options.public_key, false);
  auto [md, details] = curve_of(key.get(), options.public_key.string());
  std::string pae = dsse_pae(payload_type, *payload);
  bool verified = false;
  for (std::size_t i = 0; i < sigs.size() && !verified; ++i) {
    auto sig = base64_decode(string_field(sigs[i], "sig", source, "/dsseEnvelope/signatures/" + std::to_string(i)));
    if (!sig) throw_error(ErrorCode::invalid, "bundle", source + ": /dsseEnvelope/signatures/" + std::to_string(i) + "/sig is not valid base64");
    MdCtx ctx(EVP_MD_CTX_new());
    verified = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) == 1 &&
               EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                reinterpret_cast<const unsigned char*>(pae.data()), pae.size()) == 1;
    ERR_clear_error();
  }
  if (!verified)
    throw_error(ErrorCode::auth, "bundle",
                source + ": the signature does not verify with the public key " + options.public_key.string() +
                    " (the statement changed after signing, or another key signed it)");

  // Only now, with an authentic statement, read what it says.
  json stmt = io::parse_json(*payload, source + ": in-toto statement");
  if (string_field(stmt, "_type", source, "the statement") != kStatementType)
    throw_error(ErrorCode::unsupported, "bundle", source + ": statement _type is not " + std::string(kStatementType));
  std::string predicate_type = string_field(stmt, "predicateType", source, "the statement");
  if (predicate_type != kPredicateType)
    throw_error(ErrorCode::unsupported, "bundle", source + ": predicateType '" + predicate_type + "' is not " + kPredicateType);
  const json& pred = field(stmt, "predicate", source, "the statement");
  const json& ser = field(pred, "serialization", source, "/predicate");
  std::string method = string_field(ser, "method", source, "/predicate/serialization");
  if (method != "files")
    throw_error(ErrorCode::unsupported, "bundle", source + ": serialization method '" + method + "' is not supported (only 'files')");
  if (ser.contains("hash_type") && ser["hash_type"] != "sha256")
    throw_error(ErrorCode::unsupported, "bundle", source + ": hash_type " + ser["hash_type"].dump() + " is not supported (only sha256)");
  std::map<std::string, std::string> expected;
  const json& resources = field(pred, "resources", source, "/predicate");
  if (!resources.is_array()) throw_error(ErrorCode::invalid, "bundle", source + ": /predicate/resources is not an array");
  for (const auto& r : resources) {
    std::string name = string_field(r, "name", source, "a resource");
    if (r.contains("algorithm") && r["algorithm"] != "sha256")
      throw_error(ErrorCode::unsupported, "bundle", source + ": resource '" + name + "' uses algorithm " + r["algorithm"].dump());
    if (!expected.emplace(name, string_field(r, "digest", source, "resource '" + name + "'")).second)
      throw_error(ErrorCode::invalid, "bundle", source + ": resource '" + name + "' is listed twice");
  }
  const json& subjects = field(stmt, "subject", source, "the statement");
  if (!subjects.is_array() || subjects.size() != 1) throw_error(ErrorCode::invalid, "bundle", source + ": expected exactly one subject");
  std::string subject_name = string_field(subjects[0], "name", source, "/subject/0");
  std::string claimed = string_field(field(subjects[0], "digest", source, "/subject/0"), "sha256", source, "/subject/0/digest");
  if (claimed != subject_digest(expected, source))
    throw_error(ErrorCode::mismatch, "bundle", source + ": the subject digest does not match the listed resources");

  auto actual = hash_model(model, options.signature, options.ignore_paths);
  for (const auto& [name, digest] : actual) {
    auto it = expected.find(name);
    if (it == expected.end())
      throw_error(ErrorCode::mismatch, "bundle", model.string() + ": file '" + name + "' is not covered by the signature",
                  "remove it, or pass --ignore-paths if it is not part of the model");
    if (it->second != digest)
      throw_error(ErrorCode::mismatch, "bundle",
                  model.string() + ": file '" + name + "' has sha256 " + digest + ", the signature says " + it->second,
                  "the file changed after signing; do not use this model");
  }
  for (const auto& [name, digest] : expected)
    if (!actual.count(name))
      throw_error(ErrorCode::mismatch, "bundle", model.string() + ": file '" + name + "' is signed but missing");

  ModelSigningResult result;
  result.subject_name = subject_name;
  result.key_fingerprint = fingerprint_of(key.get());
  for (const auto& [name, digest] : expected) result.files.push_back({name, digest});
  return result;
}

ModelSigningResult sign_model_signing(const fs::path& model, const ModelSigningSignOptions& options) {
  Pkey key = load_pem_key(options.private_key, true);
  auto [md, details] = curve_of(key.get(), options.private_key.string());
  auto files = hash_model(model, options.signature, options.ignore_paths);
  std::error_code ec;
  std::string name = fs::is_directory(model, ec) ? fs::weakly_canonical(model).filename().string() : model.filename().string();
  json resources = json::array();
  for (const auto& [path, digest] : files) resources.push_back({{"algorithm", "sha256"}, {"digest", digest}, {"name", path}});
  nlohmann::ordered_json stmt;
  stmt["_type"] = kStatementType;
  stmt["subject"] = json::array({{{"name", name}, {"digest", {{"sha256", subject_digest(files, "new signature")}}}}});
  stmt["predicateType"] = kPredicateType;
  stmt["predicate"] = {{"serialization", {{"method", "files"}, {"hash_type", "sha256"}, {"allow_symlinks", false}}},
                       {"resources", resources}};
  std::string payload = stmt.dump(2);
  std::string pae = dsse_pae(kInTotoType, payload);
  MdCtx ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(pae.data()), pae.size()) != 1)
    throw_error(ErrorCode::io, "bundle", "OpenSSL could not sign: " + detail::drain_openssl_errors());
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(pae.data()),
                     pae.size()) != 1)
    throw_error(ErrorCode::io, "bundle", "OpenSSL could not sign: " + detail::drain_openssl_errors());
  sig.resize(len);
  nlohmann::ordered_json bundle;
  bundle["mediaType"] = kBundleMediaType;
  bundle["verificationMaterial"] = {{"publicKey", {{"rawBytes", base64_encode(public_pem(key.get()))}, {"keyDetails", details}}}};
  bundle["dsseEnvelope"] = {{"payload", base64_encode(payload)},
                            {"payloadType", kInTotoType},
                            {"signatures", json::array({{{"sig", base64_encode(sig)}, {"keyid", nullptr}}})}};
  io::write_file_atomic(options.signature, bundle.dump(2) + "\n");
  ModelSigningResult result;
  result.subject_name = name;
  result.key_fingerprint = fingerprint_of(key.get());
  for (const auto& [path, digest] : files) result.files.push_back({path, digest});
  return result;
}

}  // namespace gaggle::bundle
