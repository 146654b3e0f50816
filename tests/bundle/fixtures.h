#pragma once
// Shared helpers of the bundle tests: keys, trust files, demo bundles and a real
// ssh-agent (started per test, killed when the helper dies).
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "bundle/demo_bundle.h"
#include "bundle/keys.h"
#include "support/test_support.h"

namespace gaggle::test {

// "principal [options] ssh-ed25519 AAAA..." for `key`.
inline std::string signer_line(const std::string& principal, const bundle::PublicKey& key, const std::string& options = {}) {
  std::string line = principal + " ";
  if (!options.empty()) line += options + " ";
  std::string openssh = key.to_openssh();
  auto sp = openssh.find(' ', key.type.size() + 1);
  return line + openssh.substr(0, sp) + "\n";
}

struct SignedSetup {
  std::filesystem::path bundle, key, trust;
  bundle::PublicKey pub;
};

// A demo bundle in dir/bundle, a key in dir/key, and a trust file naming it alice@example.com.
inline SignedSetup make_setup(const TempDir& dir, const std::string& trust_options = "namespaces=\"gaggle-bundle\"") {
  SignedSetup s;
  s.bundle = dir / "bundle";
  s.key = dir / "key";
  s.trust = dir / "allowed_signers";
  bundle::DemoBundleOptions o;
  o.name = "demo";
  o.version = "1.2.3";
  bundle::make_demo_bundle(s.bundle, o);
  s.pub = bundle::generate_ed25519_keypair(s.key, "alice@example.com");
  write_text(s.trust, signer_line("alice@example.com", s.pub, trust_options));
  return s;
}

// A real ssh-agent on a socket inside `dir`; SSH_AUTH_SOCK points at it while it lives.
class SshAgent {
 public:
  explicit SshAgent(const TempDir& dir) : socket_(dir / "agent.sock") {
    auto r = run_command({"ssh-agent", "-s", "-a", socket_.string()});
    auto p = r.out.find("SSH_AGENT_PID=");
    if (r.exit_code != 0 || p == std::string::npos) throw std::runtime_error("ssh-agent did not start: " + r.err);
    pid_ = std::atoi(r.out.c_str() + p + 14);
    old_ = std::getenv("SSH_AUTH_SOCK") ? std::getenv("SSH_AUTH_SOCK") : "";
    ::setenv("SSH_AUTH_SOCK", socket_.c_str(), 1);
  }
  ~SshAgent() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    if (old_.empty()) ::unsetenv("SSH_AUTH_SOCK");
    else ::setenv("SSH_AUTH_SOCK", old_.c_str(), 1);
  }
  const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
  std::string old_;
  int pid_ = -1;
};

}  // namespace gaggle::test
