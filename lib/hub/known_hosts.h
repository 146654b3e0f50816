#pragma once
// Host-key checking for ssh:// hubs, with OpenSSH's known_hosts files (sshd(8),
// "SSH_KNOWN_HOSTS FILE FORMAT"). gaggle never trusts an unknown host on first use: the
// key must already be listed. Which files are read, in order:
//   1. the file given explicitly (--ssh-known-hosts FILE), alone;
//   2. else $GAGGLE_SSH_KNOWN_HOSTS, alone;
//   3. else ~/.ssh/known_hosts, then /etc/ssh/ssh_known_hosts (as ssh does).
// Understood: plain and hashed (|1|salt|hash) host names, "[host]:port" for ports other
// than 22, '*' and '?' wildcards, '!' negation, @revoked. @cert-authority lines are
// skipped (host certificates are not supported), as are comments and blank lines.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace gaggle::hub {

enum class HostKeyStatus {
  match,    // a line lists this host with exactly this key
  unknown,  // no line lists this host
  changed,  // lines list this host, with other keys only: refuse (possible man in the middle)
  revoked,  // the key is marked @revoked
};

struct HostKeyCheck {
  HostKeyStatus status = HostKeyStatus::unknown;
  std::filesystem::path file;  // the file that decided (changed/revoked/match)
  int line = 0;                // its line (1-based)
};

// Checks `key_blob` (the SSH wire-format public key the server presented) for `host` on
// `port` against one file. A missing file lists nothing (unknown). Malformed lines are
// skipped, as ssh does. Throws Error{io} when the file exists but cannot be read.
HostKeyCheck check_known_hosts_file(const std::filesystem::path& file, const std::string& host, int port,
                                    std::string_view key_blob);

// The files to consult (rules above); `explicit_file` may be empty.
std::vector<std::filesystem::path> known_hosts_files(const std::filesystem::path& explicit_file);

// All files together, as ssh reads them: a key @revoked in any file is refused; else a
// line with this host and key in any file is a match; else a line with this host and
// another key of the same type is a change; else unknown.
HostKeyCheck check_known_hosts(const std::vector<std::filesystem::path>& files, const std::string& host, int port,
                               std::string_view key_blob);

// "ssh-ed25519 SHA256:<unpadded base64>" for messages (the key type read from the blob).
std::string host_key_description(std::string_view key_blob);

// How the host is spelled in known_hosts: "host" on port 22, "[host]:port" otherwise.
std::string known_hosts_name(const std::string& host, int port);

}  // namespace gaggle::hub
