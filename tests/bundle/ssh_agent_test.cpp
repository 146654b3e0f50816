#include <catch2/catch.hpp>

#include "bundle/sign.h"
#include "bundle/ssh_agent.h"
#include "bundle/sshsig.h"
#include "bundle/verify.h"
#include "fixtures.h"
#include "io/error.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;

TEST_CASE("a real ssh-agent lists keys and signs", "[bundle][ssh_agent]") {
  TempDir dir;
  SshAgent agent(dir);
  REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "k").string()}).exit_code == 0);
  PublicKey pub = read_public_key(dir / "k.pub");
  CHECK(agent_identities(agent.socket().string()).empty());
  CHECK_THROWS_WITH(agent_sign(agent.socket().string(), pub, "x"), Catch::Contains("does not hold the key"));
  REQUIRE(run_command({"ssh-add", "-q", (dir / "k").string()}).exit_code == 0);
  auto ids = agent_identities(agent.socket().string());
  REQUIRE(ids.size() == 1);
  CHECK(ids[0].same_key(pub));
  std::string armoured = sign_sshsig(pub, [&](std::string_view d) { return agent_sign(agent.socket().string(), pub, d); }, "msg",
                                     kBundleNamespace);
  CHECK_NOTHROW(verify_sshsig(parse_sshsig(armoured, "s"), "msg", kBundleNamespace, "s"));
}

TEST_CASE("bundles sign through ssh-agent with a .pub or an encrypted key", "[bundle][ssh_agent]") {
  TempDir dir;
  auto s = make_setup(dir);
  // An encrypted key: no agent, a clear error with the way out.
  REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", (dir / "enc").string()}).exit_code == 0);
  ::unsetenv("SSH_AUTH_SOCK");
  try {
    sign_bundle(s.bundle, {dir / "enc"});
    FAIL("an encrypted key signed without an agent");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::auth);
    CHECK_THAT(e.hint(), Catch::Contains("ssh-agent") && Catch::Contains("ssh-add"));
  }
  SshAgent agent(dir);
  // Load the encrypted key into the agent the way a user would, the passphrase from an askpass program.
  write_text(dir / "askpass", "#!/bin/sh\necho 'correct horse'\n");
  std::filesystem::permissions(dir / "askpass", std::filesystem::perms::owner_all);
  ::setenv("SSH_ASKPASS", (dir / "askpass").c_str(), 1);
  ::setenv("SSH_ASKPASS_REQUIRE", "force", 1);
  ::setenv("DISPLAY", ":0", 1);
  REQUIRE(run_command({"ssh-add", "-q", (dir / "enc").string()}).exit_code == 0);
  REQUIRE(run_command({"ssh-add", "-q", s.key.string()}).exit_code == 0);

  std::string fp = sign_bundle(s.bundle, {dir / "enc"});
  CHECK(fp == read_public_key(dir / "enc.pub").fingerprint());
  write_text(s.trust, signer_line("carol@example.com", read_public_key(dir / "enc.pub")));
  CHECK(verify_bundle(s.bundle, {s.trust}).principal == "carol@example.com");

  std::filesystem::path pub = s.key.string() + ".pub";
  CHECK(sign_bundle(s.bundle, {pub}) == s.pub.fingerprint());
  write_text(s.trust, signer_line("alice@example.com", s.pub));
  CHECK(verify_bundle(s.bundle, {s.trust}).principal == "alice@example.com");
}
