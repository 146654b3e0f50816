#include <catch2/catch.hpp>

#include "bundle/base64.h"
#include "bundle/sshsig.h"
#include "fixtures.h"
#include "io/error.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;

namespace {

std::string sign_local(const PrivateKey& k, std::string_view msg, std::string_view ns = kBundleNamespace) {
  return sign_sshsig(k.pub, [&](std::string_view data) { return local_ed25519_signer_blob(k, data); }, msg, ns);
}

}  // namespace

TEST_CASE("SSHSIG round trip and armour", "[bundle][sshsig]") {
  PrivateKey k = generate_ed25519_key("me");
  std::string armoured = sign_local(k, "the manifest bytes\n");
  CHECK_THAT(armoured, Catch::StartsWith("-----BEGIN SSH SIGNATURE-----\n") && Catch::EndsWith("-----END SSH SIGNATURE-----\n"));
  SshSignature sig = parse_sshsig(armoured, "sig");
  CHECK(sig.key.same_key(k.pub));
  CHECK(sig.ns == "gaggle-bundle");
  CHECK(sig.hash_algorithm == "sha512");
  CHECK_NOTHROW(verify_sshsig(sig, "the manifest bytes\n", kBundleNamespace, "sig"));
  CHECK_THROWS_WITH(verify_sshsig(sig, "the manifest bytes", kBundleNamespace, "sig"), Catch::Contains("does not match"));
  CHECK_THROWS_WITH(verify_sshsig(sig, "the manifest bytes\n", "git", "sig"), Catch::Contains("namespace 'gaggle-bundle'"));
}

TEST_CASE("ssh-keygen -Y verify accepts gaggle's signatures", "[bundle][sshsig]") {
  TempDir dir;
  PublicKey pub = generate_ed25519_keypair(dir / "key", "alice");
  PrivateKey k = read_private_key(dir / "key");
  std::string message = "{\"name\": \"demo\"}\n";
  write_text(dir / "msg", message);
  write_text(dir / "msg.sig", sign_local(k, message));
  write_text(dir / "allowed", signer_line("alice@example.com", pub));
  auto r = run_command({"ssh-keygen", "-Y", "verify", "-f", (dir / "allowed").string(), "-I", "alice@example.com", "-n",
                        "gaggle-bundle", "-s", (dir / "msg.sig").string()},
                       message);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out + r.err, Catch::Contains("Good \"gaggle-bundle\" signature for alice@example.com"));
  // And it refuses the same signature over other bytes.
  auto bad = run_command({"ssh-keygen", "-Y", "verify", "-f", (dir / "allowed").string(), "-I", "alice@example.com", "-n",
                          "gaggle-bundle", "-s", (dir / "msg.sig").string()},
                         message + " ");
  CHECK(bad.exit_code != 0);
}

TEST_CASE("signatures made by ssh-keygen -Y sign verify in gaggle", "[bundle][sshsig]") {
  TempDir dir;
  REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "k").string()}).exit_code == 0);
  std::string message = "bytes signed by OpenSSH\n";
  write_text(dir / "msg", message);
  auto r = run_command({"ssh-keygen", "-Y", "sign", "-f", (dir / "k").string(), "-n", "gaggle-bundle", (dir / "msg").string()});
  REQUIRE(r.exit_code == 0);
  SshSignature sig = parse_sshsig(read_text(dir / "msg.sig"), "msg.sig");
  CHECK(sig.key.same_key(read_public_key(dir / "k.pub")));
  CHECK_NOTHROW(verify_sshsig(sig, message, kBundleNamespace, "msg.sig"));
  CHECK_THROWS_AS(verify_sshsig(sig, "other", kBundleNamespace, "msg.sig"), Error);
  // sha256 variant (ssh-keygen -O hashalg=sha256)
  write_text(dir / "msg2", message);
  REQUIRE(run_command({"ssh-keygen", "-Y", "sign", "-f", (dir / "k").string(), "-n", "gaggle-bundle", "-O", "hashalg=sha256",
                       (dir / "msg2").string()})
              .exit_code == 0);
  SshSignature sig2 = parse_sshsig(read_text(dir / "msg2.sig"), "msg2.sig");
  CHECK(sig2.hash_algorithm == "sha256");
  CHECK_NOTHROW(verify_sshsig(sig2, message, kBundleNamespace, "msg2.sig"));
}

TEST_CASE("truncated and garbled signatures are refused clearly", "[bundle][sshsig]") {
  PrivateKey k = generate_ed25519_key("me");
  std::string good = sign_local(k, "m");
  CHECK_THROWS_WITH(parse_sshsig(good.substr(0, good.size() / 2), "s.sig"), Catch::Contains("s.sig") && Catch::Contains("truncated"));
  CHECK_THROWS_WITH(parse_sshsig("", "s.sig"), Catch::Contains("not an SSH signature"));
  std::string garbled = good;
  garbled[40] = '!';
  CHECK_THROWS_WITH(parse_sshsig(garbled, "s.sig"), Catch::Contains("base64"));
  // A valid armour around a short blob: truncated fields are named.
  std::string armour = "-----BEGIN SSH SIGNATURE-----\n" + base64_encode(std::string("SSHSIG\0\0\0\1\0\0\0\x40", 14)) +
                       "\n-----END SSH SIGNATURE-----\n";
  CHECK_THROWS_WITH(parse_sshsig(armour, "s.sig"), Catch::Contains("truncated") && Catch::Contains("public key"));
  // A flipped signature byte fails verification, not parsing.
  SshSignature sig = parse_sshsig(good, "s.sig");
  sig.sig[5] ^= 1;
  CHECK_THROWS_WITH(verify_sshsig(sig, "m", kBundleNamespace, "s.sig"), Catch::Contains("does not match"));
}
