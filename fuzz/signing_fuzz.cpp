// libFuzzer target: signature and host-key text that arrives with a model or from a
// server. An OpenSSF model_signing signature file (a Sigstore bundle), the in-toto
// statement inside one that verifies (reached by signing the fuzzer's statement with this
// process's own key, as a malicious but key-holding signer could), a known_hosts file, and
// a server's host key blob must be rejected with an Error (or found not to match), never
// crash, hang, read out of bounds or let another exception out. The first byte picks the
// parser. Run with fuzz/run.sh signing.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bundle/base64.h"
#include "bundle/model_signing.h"
#include "hub/known_hosts.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// This process's scratch directory, a one-file model and a P-256 key pair, made once.
struct Fixture {
  fs::path dir, model, signature, public_key;
  EVP_PKEY* key = nullptr;

  Fixture() {
    dir = fs::temp_directory_path() / ("gaggle-fuzz-signing-" + std::to_string(getpid()));
    fs::create_directories(dir);
    model = dir / "model.bin";
    signature = dir / "model.sig";
    public_key = dir / "key.pub.pem";
    write_bytes(model, "fuzz model\n");
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!key) std::abort();
    BIO* bio = BIO_new_file(public_key.c_str(), "w");
    if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1) std::abort();
    BIO_free(bio);
  }
  ~Fixture() {
    EVP_PKEY_free(key);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string sign(const std::string& message) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(message.data());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx, nullptr, &len, bytes, message.size()) != 1)
      std::abort();
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, bytes, message.size()) != 1)
      std::abort();
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    return sig;
  }

  void verify() const {
    gaggle::bundle::ModelSigningVerifyOptions options;
    options.signature = signature;
    options.public_key = public_key;
    gaggle::bundle::verify_model_signing(model, options);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// The fuzzer's bytes as the whole signature file.
void verify_signature_file(std::string_view bytes) {
  write_bytes(fixture().signature, bytes);
  fixture().verify();
}

// The fuzzer's bytes as the statement of a bundle this process signs: the part of a
// signature file read only after the signature verifies.
void verify_signed_statement(std::string_view statement) {
  const std::string payload(statement);
  const std::string type = "application/vnd.in-toto+json";
  nlohmann::json bundle = {
      {"mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json"},
      {"dsseEnvelope",
       {{"payload", gaggle::bundle::base64_encode(payload)},
        {"payloadType", type},
        {"signatures",
         {{{"sig", gaggle::bundle::base64_encode(fixture().sign(gaggle::bundle::dsse_pae(type, payload)))}}}}}}};
  write_bytes(fixture().signature, bundle.dump());
  fixture().verify();
}

// The fuzzer's bytes as a known_hosts file, checked for a host with a fixed key, and as
// the key blob a server presented.
void check_known_hosts(std::string_view bytes) {
  write_bytes(fixture().dir / "known_hosts", bytes);
  static const std::string blob =
      *gaggle::bundle::base64_decode("AAAAC3NzaC1lZDI1NTE5AAAAIEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N8");
  gaggle::hub::check_known_hosts_file(fixture().dir / "known_hosts", "hub.example", 2222, blob);
  gaggle::hub::check_known_hosts_file(fixture().dir / "known_hosts", "hub.example", 22, bytes);
  gaggle::hub::host_key_description(bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 3) {
      case 0:
        verify_signature_file(rest);
        break;
      case 1:
        verify_signed_statement(rest);
        break;
      default:
        check_known_hosts(rest);
        break;
    }
  } catch (const gaggle::Error&) {
  }
  return 0;
}
