// The bad-input suite of issue #5: every way a bundle can be wrong is refused, by name.
#include <catch2/catch.hpp>

#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "bundle/sshsig.h"
#include "bundle/verify.h"
#include "fixtures.h"
#include "io/atomic_file.h"
#include "io/error.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

struct Failure {
  ErrorCode code;
  std::string message;
};

Failure verify_failure(const fs::path& bundle, const fs::path& trust, std::int64_t now = 0, bool remote = false) {
  try {
    verify_bundle(bundle, {trust, now, remote});
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {ErrorCode::usage, "verified"};
}

// Signs arbitrary manifest bytes as an attacker holding a trusted key would.
void sign_raw(const SignedSetup& s, const std::string& manifest_bytes, std::string_view ns = kBundleNamespace) {
  PrivateKey k = read_private_key(s.key);
  write_text(s.bundle / "manifest.json", manifest_bytes);
  write_text(s.bundle / "manifest.json.sig",
             sign_sshsig(k.pub, [&](std::string_view d) { return local_ed25519_signer_blob(k, d); }, manifest_bytes, ns));
}

// A listing of a directory's files with their contents, to prove nothing was written.
std::string snapshot(const fs::path& dir) {
  std::string out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out += e.path().string() + "=" + io::read_file(e.path()) + "\n";
  return out;
}

}  // namespace

TEST_CASE("a signed bundle verifies and names its signer", "[bundle][verify]") {
  TempDir dir;
  auto s = make_setup(dir);
  CHECK_FALSE(bundle_is_signed(s.bundle));
  std::string fp = sign_bundle(s.bundle, {s.key});
  CHECK(fp == s.pub.fingerprint());
  CHECK(bundle_is_signed(s.bundle));
  std::string before = snapshot(dir.path());
  VerifyResult r = verify_bundle(s.bundle, {s.trust});
  CHECK(r.name == "demo");
  CHECK(r.version == "1.2.3");
  CHECK(r.principal == "alice@example.com");
  CHECK(r.key_fingerprint == fp);
  CHECK(r.manifest.files.size() == 1);
  CHECK(snapshot(dir.path()) == before);  // verify writes nothing
}

TEST_CASE("bad bundles are refused, each with a clear message", "[bundle][verify]") {
  TempDir dir;
  auto s = make_setup(dir);
  sign_bundle(s.bundle, {s.key});
  std::string manifest = io::read_file(s.bundle / "manifest.json");
  std::string adapter = io::read_file(s.bundle / "adapter.safetensors");
  std::string sig = io::read_file(s.bundle / "manifest.json.sig");
  std::string trust = io::read_file(s.trust);
  auto restore = [&] {
    fs::remove(s.bundle / "link");
    fs::remove(s.bundle / "notes.txt");
    fs::remove_all(s.bundle / "sub");
    write_text(s.trust, trust);
    write_text(s.bundle / "manifest.json", manifest);
    write_text(s.bundle / "adapter.safetensors", adapter);
    write_text(s.bundle / "manifest.json.sig", sig);
    REQUIRE(verify_failure(s.bundle, s.trust).message == "verified");
  };

  SECTION("tampered manifest") {
    std::string t = manifest;
    t.replace(t.find("1.2.3"), 5, "1.2.4");
    write_text(s.bundle / "manifest.json", t);
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::auth);
    CHECK_THAT(f.message, Catch::Contains("manifest.json.sig") && Catch::Contains("does not match"));
  }
  SECTION("tampered tensor file") {
    std::string t = adapter;
    t[t.size() - 3] ^= 0x10;
    write_text(s.bundle / "adapter.safetensors", t);
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::mismatch);
    CHECK_THAT(f.message, Catch::Contains("'adapter.safetensors' has sha256"));
    write_text(s.bundle / "adapter.safetensors", adapter.substr(1));
    CHECK_THAT(verify_failure(s.bundle, s.trust).message, Catch::Contains("bytes, the manifest says"));
  }
  SECTION("extra file") {
    write_text(s.bundle / "notes.txt", "hello");
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::mismatch);
    CHECK_THAT(f.message, Catch::Contains("'notes.txt' is not listed"));
    fs::remove(s.bundle / "notes.txt");
    fs::create_directories(s.bundle / "sub");
    write_text(s.bundle / "sub" / "x", "1");
    CHECK_THAT(verify_failure(s.bundle, s.trust).message, Catch::Contains("'sub/x' is not listed"));
  }
  SECTION("missing file") {
    fs::remove(s.bundle / "adapter.safetensors");
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::not_found);
    CHECK_THAT(f.message, Catch::Contains("'adapter.safetensors' is listed in the manifest but missing"));
  }
  SECTION("symlink in the bundle") {
    fs::create_symlink("/etc/passwd", s.bundle / "link");
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::invalid);
    CHECK_THAT(f.message, Catch::Contains("'link' is a symbolic link"));
  }
  SECTION("untrusted key") {
    PrivateKey other = generate_ed25519_key("mallory");
    write_text(s.trust, signer_line("mallory@example.com", other.pub));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::auth);
    CHECK_THAT(f.message, Catch::Contains(s.pub.fingerprint()) && Catch::Contains("not trusted"));
  }
  SECTION("key outside its validity window") {
    write_text(s.trust, signer_line("alice@example.com", s.pub, "valid-after=\"20300101Z\""));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::auth);
    CHECK_THAT(f.message, Catch::Contains("not valid before 2030-01-01"));
    write_text(s.trust, signer_line("alice@example.com", s.pub, "valid-before=\"20200101Z\""));
    CHECK_THAT(verify_failure(s.bundle, s.trust).message, Catch::Contains("expired at 2020-01-01"));
    // ... and inside it, given an explicit time.
    CHECK(verify_failure(s.bundle, s.trust, 1500000000).message == "verified");
  }
  SECTION("signer trusted only for another namespace") {
    write_text(s.trust, signer_line("alice@example.com", s.pub, "namespaces=\"git\""));
    CHECK_THAT(verify_failure(s.bundle, s.trust).message, Catch::Contains("not trusted for namespace 'gaggle-bundle'"));
  }
  SECTION("truncated or garbled signature") {
    write_text(s.bundle / "manifest.json.sig", sig.substr(0, sig.size() / 2));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::invalid);
    CHECK_THAT(f.message, Catch::Contains("manifest.json.sig"));
    std::string g = sig;
    g[60] = g[60] == 'A' ? 'B' : 'A';
    write_text(s.bundle / "manifest.json.sig", g);
    auto f2 = verify_failure(s.bundle, s.trust);
    INFO(f2.message);
    CHECK((f2.code == ErrorCode::auth || f2.code == ErrorCode::invalid || f2.code == ErrorCode::unsupported));
    CHECK_THAT(f2.message, Catch::Contains("manifest.json.sig"));
    fs::remove(s.bundle / "manifest.json.sig");
    auto f3 = verify_failure(s.bundle, s.trust);
    CHECK(f3.code == ErrorCode::not_found);
    CHECK_THAT(f3.message, Catch::Contains("manifest.json.sig"));
  }
  SECTION("wrong namespace") {
    sign_raw(s, manifest, "git");
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::auth);
    CHECK_THAT(f.message, Catch::Contains("namespace 'git', expected 'gaggle-bundle'"));
  }
  SECTION("path traversal in a signed manifest") {
    auto j = nlohmann::json::parse(manifest);
    j["files"][0]["path"] = "../adapter.safetensors";
    sign_raw(s, j.dump(2));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::invalid);
    CHECK_THAT(f.message, Catch::Contains("escapes the bundle directory"));
    j["files"][0]["path"] = "/etc/passwd";
    sign_raw(s, j.dump(2));
    CHECK(verify_failure(s.bundle, s.trust).code == ErrorCode::invalid);
  }
  SECTION("oversized manifest") {
    auto j = nlohmann::json::parse(manifest);
    j["description"] = std::string(1'100'000, 'x');
    sign_raw(s, j.dump(2));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::invalid);
    CHECK_THAT(f.message, Catch::Contains("the limit is 1048576"));
  }
  SECTION("signed manifest that fails its schema") {
    auto j = nlohmann::json::parse(manifest);
    j["files"][0]["sha256"] = "not-a-digest";
    sign_raw(s, j.dump(2));
    auto f = verify_failure(s.bundle, s.trust);
    CHECK(f.code == ErrorCode::invalid);
    CHECK_THAT(f.message, Catch::Contains("/files/0/sha256"));
  }
  restore();
}

TEST_CASE("remote files may be absent only when allowed", "[bundle][verify]") {
  TempDir dir;
  auto s = make_setup(dir);
  Manifest m = read_manifest(s.bundle);
  m.files.push_back({"big.safetensors", 3, std::string(64, 'd'), "https://blobs.example.com/d"});
  write_manifest(s.bundle, m);
  sign_bundle(s.bundle, {s.key});
  CHECK(verify_failure(s.bundle, s.trust).code == ErrorCode::not_found);
  CHECK(verify_failure(s.bundle, s.trust, 0, true).message == "verified");
}

TEST_CASE("signing refuses bundles whose files do not match", "[bundle][sign]") {
  TempDir dir;
  auto s = make_setup(dir);
  write_text(s.bundle / "stray.txt", "x");
  CHECK_THROWS_WITH(sign_bundle(s.bundle, {s.key}), Catch::Contains("'stray.txt' is not listed"));
  CHECK_FALSE(bundle_is_signed(s.bundle));
  fs::remove(s.bundle / "stray.txt");
  // A public key without an agent cannot sign.
  ::unsetenv("SSH_AUTH_SOCK");
  fs::path pub = s.key.string() + ".pub";
  CHECK_THROWS_WITH(sign_bundle(s.bundle, {pub}), Catch::Contains("needs ssh-agent"));
}
