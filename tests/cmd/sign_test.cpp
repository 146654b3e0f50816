#include <signal.h>

#include <cstdlib>

#include <catch2/catch.hpp>

#include "support/test_support.h"

using namespace gaggle::test;

namespace {

std::string trust_line(const std::string& principal, const std::filesystem::path& pub) {
  std::string text = read_text(pub);
  auto sp = text.find(' ', text.find(' ') + 1);
  return principal + " namespaces=\"gaggle-bundle\" " + text.substr(0, sp) + "\n";
}

}  // namespace

TEST_CASE("sign writes a signature ssh-keygen -Y verify accepts", "[cmd][sign]") {
  TempDir dir;
  REQUIRE(run_gaggle({"keygen", "-f", (dir / "k").string(), "-C", "alice"}).exit_code == 0);
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / "b").string(), "--name", "sst2", "--version", "1.0.0"}).exit_code == 0);
  auto r = run_gaggle({"sign", (dir / "b").string(), "--key", (dir / "k").string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("signed: sst2@1.0.0 with SHA256:"));
  write_text(dir / "allowed", trust_line("alice@example.com", dir / "k.pub"));
  auto v = run_command({"ssh-keygen", "-Y", "verify", "-f", (dir / "allowed").string(), "-I", "alice@example.com", "-n",
                        "gaggle-bundle", "-s", (dir / "b" / "manifest.json.sig").string()},
                       read_text(dir / "b" / "manifest.json"));
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out + v.err, Catch::Contains("Good \"gaggle-bundle\" signature"));
}

TEST_CASE("sign with an encrypted key explains ssh-agent, and signs through a real agent", "[cmd][sign]") {
  TempDir dir;
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / "b").string()}).exit_code == 0);
  REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "pw pw pw", "-f", (dir / "enc").string()}).exit_code == 0);
  ::unsetenv("SSH_AUTH_SOCK");
  auto r = run_gaggle({"sign", (dir / "b").string(), "--key", (dir / "enc").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("encrypted") && Catch::Contains("ssh-add"));
  CHECK(r.out.empty());
  // A real agent, the key added by ssh-add with the passphrase from an askpass program.
  auto agent = run_command({"ssh-agent", "-s", "-a", (dir / "agent.sock").string()});
  auto p = agent.out.find("SSH_AGENT_PID=");
  REQUIRE(p != std::string::npos);
  int pid = std::atoi(agent.out.c_str() + p + 14);
  ::setenv("SSH_AUTH_SOCK", (dir / "agent.sock").c_str(), 1);
  write_text(dir / "askpass", "#!/bin/sh\necho 'pw pw pw'\n");
  std::filesystem::permissions(dir / "askpass", std::filesystem::perms::owner_all);
  ::setenv("SSH_ASKPASS", (dir / "askpass").c_str(), 1);
  ::setenv("SSH_ASKPASS_REQUIRE", "force", 1);
  ::setenv("DISPLAY", ":0", 1);
  auto add = run_command({"ssh-add", "-q", (dir / "enc").string()});
  auto s = run_gaggle({"sign", (dir / "b").string(), "--key", (dir / "enc.pub").string()});
  ::kill(pid, SIGTERM);
  REQUIRE(add.exit_code == 0);
  CHECK(s.exit_code == 0);
  write_text(dir / "allowed", trust_line("carol@example.com", dir / "enc.pub"));
  auto v = run_gaggle({"verify", (dir / "b").string(), "--trust", (dir / "allowed").string()});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::Contains("signed by carol@example.com"));
}

TEST_CASE("sign refuses a directory that is not a bundle", "[cmd][sign]") {
  TempDir dir;
  REQUIRE(run_gaggle({"keygen", "-f", (dir / "k").string()}).exit_code == 0);
  auto r = run_gaggle({"sign", dir.path().string(), "--key", (dir / "k").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("manifest.json"));
  CHECK(run_gaggle({"sign", dir.path().string(), "--format", "pgp"}).exit_code == 2);
}

TEST_CASE("sign uses ~/.ssh/id_ed25519 made by ssh-keygen when no --key is given", "[cmd][sign]") {
  TempDir dir;
  std::filesystem::create_directories(dir / "home" / ".ssh");
  REQUIRE(run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "erin@example.com", "-f",
                       (dir / "home" / ".ssh" / "id_ed25519").string()})
              .exit_code == 0);
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / "b").string()}).exit_code == 0);
  std::string old_home = std::getenv("HOME") ? std::getenv("HOME") : "";
  ::setenv("HOME", (dir / "home").c_str(), 1);
  ::unsetenv("SSH_AUTH_SOCK");
  auto r = run_gaggle({"sign", (dir / "b").string()});
  ::setenv("HOME", old_home.c_str(), 1);
  REQUIRE(r.exit_code == 0);
  write_text(dir / "allowed", trust_line("erin@example.com", dir / "home" / ".ssh" / "id_ed25519.pub"));
  auto v = run_gaggle({"verify", (dir / "b").string(), "--trust", (dir / "allowed").string()});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::Contains("signed by erin@example.com"));
}
