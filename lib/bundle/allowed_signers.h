#pragma once
// OpenSSH's allowed-signers file (ssh-keygen(1) "ALLOWED SIGNERS", the file git uses
// for SSH-signed commits). One signer a line:
//   principals [options] keytype base64-key [comment]
// principals: comma-separated patterns (* and ?); options: cert-authority,
// namespaces="p1,p2", valid-after="YYYYMMDD[HHMM[SS]][Z]", valid-before="...". Times
// without Z are local time, as in OpenSSH. '#' lines and blank lines are skipped.
//
// cert-authority lines are parsed but never trusted for a plain-key signature: gaggle
// does not verify SSH certificates, and says so when such a line is all that matches.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bundle/keys.h"

namespace gaggle::bundle {

struct AllowedSigner {
  std::vector<std::string> principals;
  bool cert_authority = false;
  std::vector<std::string> namespaces;  // empty = any namespace
  std::optional<std::int64_t> valid_after;   // unix time
  std::optional<std::int64_t> valid_before;  // unix time
  PublicKey key;
  int line = 0;

  std::string principal_text() const;  // principals joined by ','
};

// Throws Error{invalid} naming source:line and the problem.
std::vector<AllowedSigner> parse_allowed_signers(std::string_view text, const std::string& source);
std::vector<AllowedSigner> read_allowed_signers(const std::filesystem::path& path);

// "YYYYMMDD", "YYYYMMDDHHMM", "YYYYMMDDHHMMSS", each optionally followed by Z (UTC).
std::optional<std::int64_t> parse_signer_time(std::string_view text);

// OpenSSH's pattern lists: comma-separated, '*' and '?' wildcards, '!' negates.
bool match_pattern_list(std::string_view value, const std::vector<std::string>& patterns);

// The signer entry that trusts `key` for `ns` at unix time `now` (and, when `principal`
// is not empty, whose principal patterns match it, like ssh-keygen -Y verify -I).
// Throws Error{auth} saying why not (key not listed, principal not matched, namespace
// not allowed, not yet valid, expired, only a cert-authority line), naming `source`.
const AllowedSigner& find_trusted_signer(const std::vector<AllowedSigner>& signers, const PublicKey& key,
                                         std::string_view ns, std::int64_t now, const std::string& source,
                                         std::string_view principal = {});

}  // namespace gaggle::bundle
