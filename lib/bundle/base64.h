#pragma once
// Base64 (RFC 4648, standard alphabet) for SSH keys, SSHSIG armour and Sigstore bundles.
#include <optional>
#include <string>
#include <string_view>

namespace gaggle::bundle {

// Padded base64; with pad=false the trailing '=' are left out (OpenSSH fingerprints).
std::string base64_encode(std::string_view data, bool pad = true);
// Strict decoding: only the alphabet and correct '=' padding (missing padding is
// accepted); whitespace is not skipped. nullopt on any other byte or a bad length.
std::optional<std::string> base64_decode(std::string_view text);
// The same, skipping ASCII whitespace first (armoured blocks wrap their lines).
std::optional<std::string> base64_decode_wrapped(std::string_view text);
// Breaks `text` into lines of `width` characters, each ending in '\n'.
std::string wrap_lines(std::string_view text, std::size_t width);

}  // namespace gaggle::bundle
