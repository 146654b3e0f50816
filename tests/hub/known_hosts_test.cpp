// known_hosts lookups for ssh:// hubs (hub/known_hosts.h), on files written the way
// ssh-keygen and ssh-keyscan write them.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "bundle/base64.h"
#include "hub/known_hosts.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;
using gaggle::hub::HostKeyStatus;
namespace fs = std::filesystem;

namespace {

// The wire-format blob of an OpenSSH public key file.
std::string blob_of(const fs::path& pub) {
  std::string line = ssh_public_key(pub);
  auto blob = gaggle::bundle::base64_decode(line.substr(line.find(' ') + 1));
  REQUIRE(blob);
  return *blob;
}

}  // namespace

TEST_CASE("known_hosts: plain, bracketed, wildcard, negated, hashed, revoked and changed entries", "[hub][known_hosts]") {
  TempDir dir;
  ssh_keygen(dir / "host", "host");
  ssh_keygen(dir / "other", "other");
  const std::string key = ssh_public_key(dir / "host.pub"), other = ssh_public_key(dir / "other.pub");
  const std::string blob = blob_of(dir / "host.pub");
  fs::path f = dir / "known_hosts";
  auto status = [&](const std::string& text, const std::string& host, int port) {
    write_text(f, text);
    return gaggle::hub::check_known_hosts_file(f, host, port, blob).status;
  };

  CHECK(status("# comment\n\nhub.example " + key + "\n", "hub.example", 22) == HostKeyStatus::match);
  CHECK(status("HUB.example " + key + "\n", "hub.example", 22) == HostKeyStatus::match);  // names are case-blind
  CHECK(status("hub.example " + key + "\n", "hub.example", 2222) == HostKeyStatus::unknown);
  CHECK(status("[hub.example]:2222 " + key + "\n", "hub.example", 2222) == HostKeyStatus::match);
  CHECK(status("[hub.example]:2222 " + key + "\n", "hub.example", 22) == HostKeyStatus::unknown);
  CHECK(status("other.example,*.example " + key + "\n", "hub.example", 22) == HostKeyStatus::match);
  CHECK(status("*.example,!hub.example " + key + "\n", "hub.example", 22) == HostKeyStatus::unknown);
  CHECK(status("hub.exampl? " + key + "\n", "hub.example", 22) == HostKeyStatus::match);
  CHECK(status("hub.example " + other + "\n", "hub.example", 22) == HostKeyStatus::changed);
  CHECK(status("hub.example " + other + "\nhub.example " + key + "\n", "hub.example", 22) == HostKeyStatus::match);
  CHECK(status("hub.example ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7\n", "hub.example", 22) == HostKeyStatus::unknown);
  CHECK(status("@revoked * " + key + "\nhub.example " + key + "\n", "hub.example", 22) == HostKeyStatus::revoked);
  CHECK(status("@cert-authority *.example " + key + "\n", "hub.example", 22) == HostKeyStatus::unknown);
  CHECK(status("hub.example not-base64!! \nhub.example\n", "hub.example", 22) == HostKeyStatus::unknown);

  // Hashed names, made by ssh-keygen -H from plain ones.
  write_text(f, "[127.0.0.1]:2222 " + key + "\nhub.example " + key + "\n");
  auto r = run_command({"ssh-keygen", "-H", "-f", f.string()});
  REQUIRE(r.exit_code == 0);
  std::string hashed = read_text(f);
  REQUIRE(hashed.find("|1|") == 0);
  REQUIRE(hashed.find("hub.example") == std::string::npos);
  CHECK(gaggle::hub::check_known_hosts_file(f, "127.0.0.1", 2222, blob).status == HostKeyStatus::match);
  CHECK(gaggle::hub::check_known_hosts_file(f, "hub.example", 22, blob).status == HostKeyStatus::match);
  CHECK(gaggle::hub::check_known_hosts_file(f, "127.0.0.1", 22, blob).status == HostKeyStatus::unknown);
  auto line = gaggle::hub::check_known_hosts_file(f, "hub.example", 22, blob);
  CHECK(line.line == 2);

  // A missing file lists nothing; several files are read together, as ssh does.
  CHECK(gaggle::hub::check_known_hosts_file(dir / "absent", "hub.example", 22, blob).status == HostKeyStatus::unknown);
  write_text(dir / "a", "hub.example " + other + "\n");
  write_text(dir / "b", "hub.example " + key + "\n");
  CHECK(gaggle::hub::check_known_hosts({dir / "a", dir / "b"}, "hub.example", 22, blob).status == HostKeyStatus::match);
  CHECK(gaggle::hub::check_known_hosts({dir / "a", dir / "absent"}, "hub.example", 22, blob).status == HostKeyStatus::changed);
  CHECK(gaggle::hub::host_key_description(blob).rfind("ssh-ed25519 SHA256:", 0) == 0);
  CHECK(gaggle::hub::known_hosts_name("h", 22) == "h");
  CHECK(gaggle::hub::known_hosts_name("h", 2222) == "[h]:2222");
}

TEST_CASE("known_hosts: a server's key type is described only when it is a key type name", "[hub][known_hosts]") {
  auto blob_with_type = [](const std::string& type) {
    std::string blob(4, '\0');
    blob[3] = static_cast<char>(type.size());
    return blob + type + std::string(32, 'k');
  };
  CHECK(gaggle::hub::host_key_description(blob_with_type("sk-ssh-ed25519@openssh.com"))
            .rfind("sk-ssh-ed25519@openssh.com SHA256:", 0) == 0);
  // A malicious server's "type" that would clear the screen and retitle the window when printed.
  const std::string description = gaggle::hub::host_key_description(blob_with_type("\x1b[2J\x1b]0;ok\x07"));
  CHECK(description.rfind("unknown SHA256:", 0) == 0);
  CHECK(description.find('\x1b') == std::string::npos);
  CHECK(gaggle::hub::host_key_description("").rfind("unknown SHA256:", 0) == 0);
}

TEST_CASE("known_hosts: which files are read", "[hub][known_hosts]") {
  CHECK(gaggle::hub::known_hosts_files("/x/kh") == std::vector<fs::path>{"/x/kh"});
  const char* old = std::getenv("GAGGLE_SSH_KNOWN_HOSTS");
  std::string saved = old ? old : "";
  ::setenv("GAGGLE_SSH_KNOWN_HOSTS", "/y/kh", 1);
  CHECK(gaggle::hub::known_hosts_files("") == std::vector<fs::path>{"/y/kh"});
  ::unsetenv("GAGGLE_SSH_KNOWN_HOSTS");
  auto defaults = gaggle::hub::known_hosts_files("");
  REQUIRE(defaults.size() == 2);
  CHECK(defaults[0].filename() == "known_hosts");
  CHECK(defaults[1] == "/etc/ssh/ssh_known_hosts");
  if (old) ::setenv("GAGGLE_SSH_KNOWN_HOSTS", saved.c_str(), 1);
}
