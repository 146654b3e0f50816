#pragma once
// Where hub credentials come from, in order: GAGGLE_TOKEN (or GAGGLE_USER +
// GAGGLE_PASSWORD) in the environment, then git's own credential helpers
// (`git credential fill`, never prompting) — for git hubs and, after a 401, for blob
// stores and static indexes (hub/http.h). ssh:// hubs use ssh-agent only
// (detail/git.cpp), and check the server's host key against known_hosts (known_hosts.h).
// Credentials are never printed, logged or put into error messages.
#include <optional>
#include <string>

namespace gaggle::hub {

struct Credential {
  std::string username;
  std::string password;  // a password or a token
};

// GAGGLE_USER + GAGGLE_PASSWORD, or GAGGLE_TOKEN (user GAGGLE_USER or "gaggle").
std::optional<Credential> credential_from_environment();

// Asks `git credential fill` for `url` (GIT_TERMINAL_PROMPT=0: no prompt, ever).
// Returns nothing when no helper knows the URL or git is missing.
std::optional<Credential> credential_from_git_helper(const std::string& url);

// Environment first, then git's helpers.
std::optional<Credential> find_credential(const std::string& url);

}  // namespace gaggle::hub
