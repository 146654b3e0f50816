#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

struct Signed {
  fs::path bundle, trust, key;
};

Signed make_signed(const TempDir& dir, const std::string& name) {
  Signed s{dir / name, dir / "allowed", dir / "key"};
  if (!fs::exists(s.key)) REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", s.key.string()}).exit_code == 0);
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", s.bundle.string(), "--name", name, "--version", "2.0.0"}).exit_code == 0);
  REQUIRE(run_gaggle({"sign", s.bundle.string(), "--key", s.key.string()}).exit_code == 0);
  std::string pub = read_text(s.key.string() + ".pub");
  write_text(s.trust, "dana@example.com " + pub.substr(0, pub.find(' ', 12)) + "\n");
  return s;
}

}  // namespace

TEST_CASE("verify prints what it verified on stdout", "[cmd][verify]") {
  TempDir dir;
  auto a = make_signed(dir, "alpha");
  auto b = make_signed(dir, "beta");
  auto r = run_gaggle({"verify", a.bundle.string(), b.bundle.string(), "--trust", a.trust.string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("verified: alpha@2.0.0 signed by dana@example.com (SHA256:"));
  CHECK_THAT(r.out, Catch::Contains("verified: beta@2.0.0"));
  CHECK(r.err.empty());
  auto j = run_gaggle({"verify", "--json", a.bundle.string(), "--trust", a.trust.string()});
  REQUIRE(j.exit_code == 0);
  auto parsed = nlohmann::json::parse(j.out);
  CHECK(parsed[0]["principal"] == "dana@example.com");
  CHECK(parsed[0]["name"] == "alpha");
  CHECK(run_gaggle({"verify", a.bundle.string(), "--trust", a.trust.string(), "-I", "dana@example.com"}).exit_code == 0);
  auto other = run_gaggle({"verify", a.bundle.string(), "--trust", a.trust.string(), "-I", "eve@example.com"});
  CHECK(other.exit_code == 1);
  CHECK_THAT(other.err, Catch::Contains("not 'eve@example.com'"));
}

TEST_CASE("verify exits 1 naming the first problem and prints nothing on stdout", "[cmd][verify]") {
  TempDir dir;
  auto s = make_signed(dir, "gamma");
  write_text(s.bundle / "extra.bin", "x");
  auto r = run_gaggle({"verify", s.bundle.string(), "--trust", s.trust.string()});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: verify '") && Catch::Contains("'extra.bin' is not listed"));
  CHECK_THAT(r.err, Catch::Contains("hint: "));
  fs::remove(s.bundle / "extra.bin");
  write_text(s.trust, "# nobody\n");
  auto u = run_gaggle({"verify", s.bundle.string(), "--trust", s.trust.string()});
  CHECK(u.exit_code == 1);
  CHECK_THAT(u.err, Catch::Contains("not trusted"));
  CHECK(run_gaggle({"verify", s.bundle.string()}).exit_code == 2);  // no --trust
}

TEST_CASE("verify accepts bundles signed by ssh-keygen -Y sign", "[cmd][verify]") {
  TempDir dir;
  auto s = make_signed(dir, "delta");
  fs::remove(s.bundle / "manifest.json.sig");
  auto r = run_command({"ssh-keygen", "-Y", "sign", "-f", s.key.string(), "-n", "gaggle-bundle", (s.bundle / "manifest.json").string()});
  REQUIRE(r.exit_code == 0);
  auto v = run_gaggle({"verify", s.bundle.string(), "--trust", s.trust.string()});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::StartsWith("verified: delta@2.0.0 signed by dana@example.com"));
  // ... and refuses the namespace git uses for commits.
  fs::remove(s.bundle / "manifest.json.sig");
  REQUIRE(run_command({"ssh-keygen", "-Y", "sign", "-f", s.key.string(), "-n", "git", (s.bundle / "manifest.json").string()}).exit_code == 0);
  auto g = run_gaggle({"verify", s.bundle.string(), "--trust", s.trust.string()});
  CHECK(g.exit_code == 1);
  CHECK_THAT(g.err, Catch::Contains("namespace 'git'"));
}

TEST_CASE("verify --model-signing accepts the real OpenSSF signatures", "[cmd][verify]") {
  TempDir dir;
  fs::path data = data_dir() / "model-signing";
  fs::copy(data, dir / "ms", fs::copy_options::recursive);
  fs::path key = dir / "ms/keys/signing-key-pub.pem";
  auto r = run_gaggle({"verify", (dir / "ms/v1.0.1-elliptic-key").string(), "--model-signing",
                       (dir / "ms/v1.0.1-elliptic-key/model.sig").string(), "--public-key", key.string(), "--ignore-paths",
                       (dir / "ms/v1.0.1-elliptic-key/ignore-me").string()});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("verified: v1.0.1-elliptic-key (2 files"));
  auto r0 = run_gaggle({"verify", (dir / "ms/v1.0.0-elliptic-key/signme-1").string(), "--model-signing",
                        (dir / "ms/v1.0.0-elliptic-key/model.sig").string(), "--public-key", key.string()});
  CHECK(r0.exit_code == 0);
  write_text(dir / "ms/v1.0.0-elliptic-key/signme-1", "signme-1!\n");
  auto bad = run_gaggle({"verify", (dir / "ms/v1.0.0-elliptic-key/signme-1").string(), "--model-signing",
                         (dir / "ms/v1.0.0-elliptic-key/model.sig").string(), "--public-key", key.string()});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("has sha256"));
}

TEST_CASE("sign --format model-signing round-trips through verify", "[cmd][verify]") {
  TempDir dir;
  REQUIRE(run_command({"openssl", "ecparam", "-genkey", "-name", "secp384r1", "-noout", "-out", (dir / "ec.pem").string()}).exit_code == 0);
  REQUIRE(run_command({"openssl", "ec", "-in", (dir / "ec.pem").string(), "-pubout", "-out", (dir / "ec.pub").string()}).exit_code == 0);
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / "m").string()}).exit_code == 0);
  auto s = run_gaggle({"sign", (dir / "m").string(), "--format", "model-signing", "--key", (dir / "ec.pem").string()});
  REQUIRE(s.exit_code == 0);
  auto v = run_gaggle({"verify", (dir / "m").string(), "--model-signing", (dir / "m/model.sig").string(), "--public-key",
                       (dir / "ec.pub").string()});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::Contains("(2 files"));
}
