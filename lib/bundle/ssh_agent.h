#pragma once
// A client of ssh-agent (draft-miller-ssh-agent) over the unix socket named by
// SSH_AUTH_SOCK: list identities, and sign with one (SSH2_AGENTC_SIGN_REQUEST), so that
// keys protected by a passphrase (or held by a hardware token) sign without gaggle
// ever seeing them. Errors: Error{auth} when the agent refuses or lacks the key,
// Error{io} when the socket cannot be reached.
#include <string>
#include <string_view>
#include <vector>

#include "bundle/keys.h"

namespace gaggle::bundle {

// $SSH_AUTH_SOCK, or "" when unset.
std::string agent_socket_from_env();

std::vector<PublicKey> agent_identities(const std::string& socket_path);

// Returns the SSH signature blob (string type, string sig) the agent made over `data`.
std::string agent_sign(const std::string& socket_path, const PublicKey& key, std::string_view data);

}  // namespace gaggle::bundle
