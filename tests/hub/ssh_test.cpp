// ssh:// hubs against a real OpenSSH sshd on 127.0.0.1 and a real ssh-agent: the login
// key comes from the agent (never from a file, never printed), the server's host key
// must be in known_hosts (never trusted on first use), and every failure (unknown host,
// changed key, no agent, a key the server does not know) ends at once with an error
// naming the URL and a hint.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

// Printed when sshd or ssh-agent is missing (ctest reports the case as skipped).
constexpr const char* kSkipped =
    "GAGGLE-TEST-SKIPPED: /usr/sbin/sshd or ssh-agent missing (scripts/packages.txt: openssh-server, openssh-client)";

// gaggle with a clean HOME (no ~/.ssh of the machine's user), SSH_AUTH_SOCK as given.
CommandResult gaggle_ssh(const fs::path& home, const std::string& agent_socket, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "-u", "GAGGLE_SSH_KNOWN_HOSTS", "HOME=" + home.string(),
                                "SSH_AUTH_SOCK=" + agent_socket};
  argv.push_back(gaggle_binary().string());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

// The private key's base64 body: must never appear in what gaggle prints.
std::string private_key_body(const fs::path& key) {
  std::string text = read_text(key);
  auto begin = text.find('\n') + 1;
  return text.substr(begin, 60);
}

struct SshHub {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "srv" / "hub.git", trust);
  Sshd sshd{dir / "sshd"};
  fs::path home = dir / "home";
  fs::path known_hosts = dir / "known_hosts";
  fs::path login_key = dir / "login_ed25519";

  SshHub() {
    fs::create_directories(home);
    write_text(known_hosts, sshd.known_hosts_line());
    ssh_keygen(login_key, "gaggle test login");
    sshd.authorize(fs::path(login_key.string() + ".pub"));
  }
  std::string url() const { return sshd.url(hub); }
};

}  // namespace

TEST_CASE("publish and pull over ssh:// with the login key in ssh-agent", "[hub][ssh]") {
  if (!Sshd::available()) {
    WARN(kSkipped);
    return;
  }
  SshHub s;
  SshAgent agent(s.dir / "agent.sock");
  agent.add(s.login_key);
  const std::string url = s.url();
  const std::string secret = private_key_body(s.login_key);
  auto no_secret = [&](const CommandResult& r) {
    CHECK(r.out.find(secret) == std::string::npos);
    CHECK(r.err.find(secret) == std::string::npos);
  };

  fs::path b = make_signed_bundle(s.dir / "sst2", "sst2", "1.0.0", s.alice);
  auto p = gaggle_ssh(s.home, agent.socket().string(),
                      {"publish", b.string(), "--hub", url, "--trust", s.trust.string(), "--cache", (s.dir / "cache").string(),
                       "--ssh-known-hosts", s.known_hosts.string(), "--json"});
  INFO(p.err << "\nsshd: " << s.sshd.log());
  REQUIRE(p.exit_code == 0);
  CHECK(json_of(p)["attempts"] == 1);
  CHECK(json_of(p)["bytes_pushed"].get<std::uint64_t>() > 0);
  no_secret(p);
  CHECK_THAT(run_command({"git", "--git-dir", s.hub.string(), "ls-tree", "-r", "--name-only", "main"}).out,
             Catch::Contains("experts/sst2/1.0.0/manifest.json"));

  // The hub's pre-receive hook runs over ssh too: an untrusted signer is refused.
  Signer mallory = make_signer_inproc(s.dir.path(), "mallory");
  fs::path mallory_trust = write_trust(s.dir / "mallory-trust", {mallory});
  fs::path evil = make_signed_bundle_inproc(s.dir / "evil", "evil", "1.0.0", mallory, 7);
  auto refused = gaggle_ssh(s.home, agent.socket().string(),
                            {"publish", evil.string(), "--hub", url, "--trust", mallory_trust.string(), "--cache",
                             (s.dir / "cache").string(), "--ssh-known-hosts", s.known_hosts.string()});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("refused") && Catch::Contains("evil"));

  // Pull with --ssh-known-hosts, then with the user's own ~/.ssh/known_hosts.
  auto first = gaggle_ssh(s.home, agent.socket().string(),
                          {"pull", "--hub", url, "--pool", (s.dir / "pool").string(), "--trust", s.trust.string(), "--json",
                           "--ssh-known-hosts", s.known_hosts.string()});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  auto j = json_of(first);
  CHECK(j["installed"] == 1);
  CHECK(j["git_bytes"].get<std::uint64_t>() > 0);
  no_secret(first);
  CHECK(fs::exists(s.dir / "pool" / "bundles" / "sst2" / "1.0.0" / "adapter.safetensors"));

  fs::create_directories(s.home / ".ssh");
  fs::copy_file(s.known_hosts, s.home / ".ssh" / "known_hosts");
  auto second = gaggle_ssh(s.home, agent.socket().string(),
                           {"pull", "--hub", url, "--pool", (s.dir / "pool").string(), "--trust", s.trust.string(), "--json"});
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  auto k = json_of(second);
  CHECK(k["unchanged"] == 1);
  CHECK(k["git_bytes"] == 0);
  CHECK(k["git_objects"] == 0);
}

TEST_CASE("ssh:// refuses an unknown or changed host key, with the fingerprint and a hint", "[hub][ssh]") {
  if (!Sshd::available()) {
    WARN(kSkipped);
    return;
  }
  SshHub s;
  SshAgent agent(s.dir / "agent.sock");
  agent.add(s.login_key);
  const std::string url = s.url();
  auto pull = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"pull", "--hub", url, "--pool", (s.dir / "pool").string(), "--trust", s.trust.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return gaggle_ssh(s.home, agent.socket().string(), args);
  };

  // Nothing lists the host: refused (no trust on first use).
  auto unknown = pull({});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Catch::Contains(url) && Catch::Contains("unknown ssh host [127.0.0.1]:" + std::to_string(s.sshd.port())) &&
                              Catch::Contains("SHA256:") && Catch::Contains("ssh-keyscan -p " + std::to_string(s.sshd.port())) &&
                              Catch::Contains("--ssh-known-hosts"));

  // The host is listed with another key: refused as a possible man in the middle.
  fs::path other = s.dir / "other_host";
  ssh_keygen(other, "another host");
  write_text(s.dir / "wrong_known_hosts", "[127.0.0.1]:" + std::to_string(s.sshd.port()) + " " +
                                              ssh_public_key(fs::path(other.string() + ".pub")) + "\n");
  auto changed = pull({"--ssh-known-hosts", (s.dir / "wrong_known_hosts").string()});
  CHECK(changed.exit_code == 1);
  CHECK_THAT(changed.err, Catch::Contains(url) && Catch::Contains("CHANGED") && Catch::Contains("ssh-keygen -R"));

  // The same, hashed as 'ssh-keyscan -H' writes it: the right key is accepted.
  auto scan = run_command({"ssh-keyscan", "-H", "-t", "ed25519", "-p", std::to_string(s.sshd.port()), "127.0.0.1"});
  REQUIRE(scan.exit_code == 0);
  REQUIRE_THAT(scan.out, Catch::StartsWith("|1|"));
  write_text(s.dir / "hashed_known_hosts", scan.out);
  auto hashed = pull({"--ssh-known-hosts", (s.dir / "hashed_known_hosts").string(), "--json"});
  INFO(hashed.err);
  CHECK(hashed.exit_code == 0);

  // GAGGLE_SSH_KNOWN_HOSTS names the file when no flag does.
  auto from_env = run_command({"env", "HOME=" + s.home.string(), "SSH_AUTH_SOCK=" + agent.socket().string(),
                               "GAGGLE_SSH_KNOWN_HOSTS=" + (s.dir / "wrong_known_hosts").string(), gaggle_binary().string(),
                               "pull", "--hub", url, "--pool", (s.dir / "pool").string(), "--trust", s.trust.string()});
  CHECK(from_env.exit_code == 1);
  CHECK_THAT(from_env.err, Catch::Contains("CHANGED"));
}

TEST_CASE("ssh:// without an agent, or with a key the server does not know, fails at once and says why", "[hub][ssh]") {
  if (!Sshd::available()) {
    WARN(kSkipped);
    return;
  }
  SshHub s;
  const std::string url = s.url();
  auto pull = [&](const std::string& agent_socket) {
    return gaggle_ssh(s.home, agent_socket,
                      {"pull", "--hub", url, "--pool", (s.dir / "pool").string(), "--trust", s.trust.string(),
                       "--ssh-known-hosts", s.known_hosts.string()});
  };

  auto no_agent = pull("");
  CHECK(no_agent.exit_code == 1);
  CHECK_THAT(no_agent.err, Catch::Contains(url) && Catch::Contains("SSH_AUTH_SOCK is not set") && Catch::Contains("ssh-add"));

  auto dead_agent = pull((s.dir / "no-such-agent.sock").string());
  CHECK(dead_agent.exit_code == 1);
  CHECK_THAT(dead_agent.err, Catch::Contains(url) && Catch::Contains("is not a socket"));

  SshAgent agent(s.dir / "agent.sock");
  fs::path stranger = s.dir / "stranger_ed25519";
  ssh_keygen(stranger, "not authorised");
  agent.add(stranger);
  auto wrong_key = pull(agent.socket().string());
  CHECK(wrong_key.exit_code == 1);
  CHECK_THAT(wrong_key.err, Catch::Contains(url) && Catch::Contains("refused every key in ssh-agent") &&
                                Catch::Contains("authorized_keys"));

  auto publish = gaggle_ssh(s.home, agent.socket().string(),
                            {"publish", make_signed_bundle_inproc(s.dir / "b", "b", "1.0.0", s.alice).string(), "--hub", url,
                             "--trust", s.trust.string(), "--cache", (s.dir / "cache").string(), "--ssh-known-hosts",
                             s.known_hosts.string()});
  CHECK(publish.exit_code == 1);
  CHECK_THAT(publish.err, Catch::Contains(url) && Catch::Contains("refused every key in ssh-agent"));
  CHECK_FALSE(fs::exists(s.dir / "pool" / "pool.json"));
}
