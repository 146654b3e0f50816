#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "bundle/keys.h"
#include "io/error.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::bundle;
using gaggle::test::read_text;
using gaggle::test::run_command;

TEST_CASE("Ed25519 signatures match RFC 8032 test 1", "[bundle][keys]") {
  auto unhex = [](const std::string& h) {
    std::string out;
    for (std::size_t i = 0; i < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return out;
  };
  PrivateKey k;
  k.seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  k.pub = ed25519_public_key(unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
  std::string sig = ed25519_sign(k, "");
  CHECK(sig == unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"));
  CHECK(ed25519_verify(k.pub, "", sig));
  CHECK_FALSE(ed25519_verify(k.pub, "x", sig));
}

TEST_CASE("keygen writes OpenSSH files that ssh-keygen reads", "[bundle][keys]") {
  test::TempDir dir;
  PublicKey pub = generate_ed25519_keypair(dir / "id", "alice@example.com");
  struct stat st {};
  REQUIRE(::stat((dir / "id").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_THAT(read_text(dir / "id"), Catch::StartsWith("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
  CHECK(read_text(dir / "id.pub") == pub.to_openssh() + "\n");
  CHECK_THAT(pub.to_openssh(), Catch::StartsWith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI") && Catch::EndsWith(" alice@example.com"));
  // ssh-keygen derives the same public key from gaggle's private key.
  auto y = run_command({"ssh-keygen", "-y", "-f", (dir / "id").string()});
  REQUIRE(y.exit_code == 0);
  CHECK(y.out.substr(0, y.out.find(' ', 12)) == pub.to_openssh().substr(0, pub.to_openssh().find(' ', 12)));
  // ... and the same fingerprint.
  auto l = run_command({"ssh-keygen", "-l", "-E", "sha256", "-f", (dir / "id.pub").string()});
  REQUIRE(l.exit_code == 0);
  CHECK_THAT(l.out, Catch::Contains(pub.fingerprint()));
  // Round trip through gaggle's own reader.
  PrivateKey back = read_private_key(dir / "id");
  CHECK(back.pub.same_key(pub));
  CHECK(back.pub.comment == "alice@example.com");
  CHECK(read_public_key(dir / "id.pub").same_key(pub));
  // Never overwritten.
  CHECK_THROWS_MATCHES(generate_ed25519_keypair(dir / "id", "x"), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::exists; }));
}

TEST_CASE("keys made by ssh-keygen load in gaggle", "[bundle][keys]") {
  test::TempDir dir;
  auto r = run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bob@example.com", "-f", (dir / "k").string()});
  REQUIRE(r.exit_code == 0);
  PrivateKey k = read_private_key(dir / "k");
  PublicKey pub = read_public_key(dir / "k.pub");
  CHECK(k.pub.same_key(pub));
  CHECK(k.pub.comment == "bob@example.com");
  CHECK(pub.comment == "bob@example.com");
  std::string sig = ed25519_sign(k, "hello");
  CHECK(ed25519_verify(pub, "hello", sig));
}

TEST_CASE("an encrypted key says how to use ssh-agent", "[bundle][keys]") {
  test::TempDir dir;
  auto r = run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "secret pass", "-f", (dir / "k").string()});
  REQUIRE(r.exit_code == 0);
  auto info = inspect_private_key(read_text(dir / "k"), "k");
  CHECK(info.encrypted);
  CHECK(info.pub.same_key(read_public_key(dir / "k.pub")));
  try {
    read_private_key(dir / "k");
    FAIL("an encrypted key loaded");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::auth);
    CHECK_THAT(e.what(), Catch::Contains("encrypted"));
    CHECK_THAT(e.hint(), Catch::Contains("ssh-add"));
  }
}

TEST_CASE("malformed keys are refused by name", "[bundle][keys]") {
  CHECK_THROWS_WITH(parse_public_key("ssh-ed25519", "k.pub"), Catch::Contains("k.pub"));
  CHECK_THROWS_WITH(parse_public_key("ssh-ed25519 AAAA!!!", "k.pub"), Catch::Contains("base64"));
  // The type on the line must match the blob.
  PrivateKey k = generate_ed25519_key("c");
  std::string line = k.pub.to_openssh();
  CHECK_THROWS_WITH(parse_public_key("ssh-rsa" + line.substr(11), "k.pub"), Catch::Contains("ssh-ed25519"));
  std::string text = format_private_key(k);
  CHECK(parse_private_key(text, "k").seed == k.seed);
  CHECK_THROWS_WITH(parse_private_key(text.substr(0, 100), "k"), Catch::Contains("k"));
  CHECK_THROWS_WITH(parse_private_key("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "k"),
                    Catch::Contains("not an OpenSSH private key"));
  // A flipped byte in the secret part is caught by the self-check.
  std::string body = text;
  body[200] = body[200] == 'A' ? 'B' : 'A';
  CHECK_THROWS_AS(parse_private_key(body, "k"), Error);
}
