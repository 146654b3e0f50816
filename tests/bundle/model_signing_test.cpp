#include <catch2/catch.hpp>

#include "bundle/model_signing.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(GAGGLE_TEST_DATA) / "model-signing";

// A writable copy of the real fixtures.
fs::path copy_fixture(const TempDir& dir, const std::string& name) {
  fs::copy(kData / name, dir / name, fs::copy_options::recursive);
  return dir / name;
}

ErrorCode failure_code(const fs::path& model, const ModelSigningVerifyOptions& o, std::string* message = nullptr) {
  try {
    verify_model_signing(model, o);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return ErrorCode::usage;
}

}  // namespace

TEST_CASE("real model_signing v1.0.0 and v1.0.1 signatures verify", "[bundle][model_signing]") {
  TempDir dir;
  fs::path v100 = copy_fixture(dir, "v1.0.0-elliptic-key");
  auto r = verify_model_signing(v100 / "signme-1", {v100 / "model.sig", kData / "keys/signing-key-pub.pem", {}});
  CHECK(r.subject_name == "signme-1");
  // The key's id as GnuTLS printed it into the PEM file's preamble.
  CHECK(r.key_fingerprint == "sha256:c1e49d63327f85c7e2971aefd30b5a0d1c6b9b5e1a892e7f5fba995adace816d");
  REQUIRE(r.files.size() == 1);

  fs::path v101 = copy_fixture(dir, "v1.0.1-elliptic-key");
  ModelSigningVerifyOptions o{v101 / "model.sig", kData / "keys/signing-key-pub.pem", {v101 / "ignore-me"}};
  auto r2 = verify_model_signing(v101, o);
  CHECK(r2.subject_name == "v1.0.1-elliptic-key");
  CHECK(r2.files.size() == 2);
  // ignore-me is not covered by the signature: without --ignore-paths it is an extra file.
  std::string message;
  CHECK(failure_code(v101, {v101 / "model.sig", kData / "keys/signing-key-pub.pem", {}}, &message) == ErrorCode::mismatch);
  CHECK_THAT(message, Catch::Contains("'ignore-me' is not covered"));
  // Relative ignore paths are taken relative to the model too.
  CHECK_NOTHROW(verify_model_signing(v101, {v101 / "model.sig", kData / "keys/signing-key-pub.pem", {"ignore-me"}}));
}

TEST_CASE("model_signing signatures are rejected once a signed byte changes", "[bundle][model_signing]") {
  TempDir dir;
  fs::path v101 = copy_fixture(dir, "v1.0.1-elliptic-key");
  ModelSigningVerifyOptions o{v101 / "model.sig", kData / "keys/signing-key-pub.pem", {v101 / "ignore-me"}};
  std::string message;
  SECTION("a file's byte") {
    write_text(v101 / "signme-2", "signme-3");
    CHECK(failure_code(v101, o, &message) == ErrorCode::mismatch);
    CHECK_THAT(message, Catch::Contains("'signme-2' has sha256"));
  }
  SECTION("a missing file") {
    fs::remove(v101 / "signme-1");
    CHECK(failure_code(v101, o, &message) == ErrorCode::mismatch);
    CHECK_THAT(message, Catch::Contains("'signme-1' is signed but missing"));
  }
  SECTION("the statement") {
    std::string sig = io::read_file(v101 / "model.sig");
    auto p = sig.find("\"payload\": \"") + 40;
    sig[p] = sig[p] == 'A' ? 'B' : 'A';
    write_text(v101 / "model.sig", sig);
    ErrorCode c = failure_code(v101, o, &message);
    CHECK((c == ErrorCode::auth || c == ErrorCode::invalid));
  }
  SECTION("another key") {
    REQUIRE(run_command({"openssl", "ecparam", "-genkey", "-name", "secp384r1", "-noout", "-out", (dir / "k.pem").string()}).exit_code == 0);
    REQUIRE(run_command({"openssl", "ec", "-in", (dir / "k.pem").string(), "-pubout", "-out", (dir / "k.pub.pem").string()}).exit_code == 0);
    o.public_key = dir / "k.pub.pem";
    CHECK(failure_code(v101, o, &message) == ErrorCode::auth);
    CHECK_THAT(message, Catch::Contains("does not verify"));
  }
}

TEST_CASE("gaggle signs in the model_signing format and verifies its own signatures", "[bundle][model_signing]") {
  TempDir dir;
  for (const char* curve : {"prime256v1", "secp384r1"}) {
    fs::path key = dir / (std::string(curve) + ".pem"), pub = dir / (std::string(curve) + ".pub.pem");
    REQUIRE(run_command({"openssl", "ecparam", "-genkey", "-name", curve, "-noout", "-out", key.string()}).exit_code == 0);
    REQUIRE(run_command({"openssl", "ec", "-in", key.string(), "-pubout", "-out", pub.string()}).exit_code == 0);
    fs::path model = dir / (std::string("model-") + curve);
    fs::create_directories(model / "sub");
    write_text(model / "a.bin", "weights");
    write_text(model / "sub" / "b.json", "{}");
    write_text(model / ".gitignore", "x");
    auto signed_r = sign_model_signing(model, {key, model / "model.sig", {}});
    CHECK(signed_r.files.size() == 2);
    auto r = verify_model_signing(model, {model / "model.sig", pub, {}});
    CHECK(r.subject_name == model.filename().string());
    CHECK(r.key_fingerprint == signed_r.key_fingerprint);
    write_text(model / "a.bin", "weightz");
    CHECK(failure_code(model, {model / "model.sig", pub, {}}) == ErrorCode::mismatch);
  }
  CHECK(dsse_pae("t", "body") == "DSSEv1 1 t 4 body");
}
