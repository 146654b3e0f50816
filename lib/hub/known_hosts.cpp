#include "hub/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "bundle/base64.h"
#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

// '*' any run, '?' one character (ssh's match_pattern; case-insensitive for host names).
bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// "|1|base64(salt)|base64(HMAC-SHA1(salt, name))"
bool hashed_match(std::string_view entry, const std::string& name) {
  if (entry.substr(0, 3) != "|1|") return false;
  std::string_view rest = entry.substr(3);
  auto bar = rest.find('|');
  if (bar == std::string_view::npos) return false;
  auto salt = bundle::base64_decode(rest.substr(0, bar));
  auto hash = bundle::base64_decode(rest.substr(bar + 1));
  if (!salt || !hash || hash->size() != 20) return false;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), salt->data(), static_cast<int>(salt->size()), reinterpret_cast<const unsigned char*>(name.data()),
            name.size(), out, &len))
    return false;
  return len == 20 && std::string(reinterpret_cast<const char*>(out), len) == *hash;
}

// Does the host field (comma-separated patterns) name `name`? A matching '!' pattern vetoes.
bool hosts_match(const std::string& field, const std::string& name) {
  if (field.rfind("|1|", 0) == 0) return hashed_match(field, name);
  bool matched = false;
  std::stringstream ss(field);
  std::string pattern;
  while (std::getline(ss, pattern, ',')) {
    if (pattern.empty()) continue;
    bool negated = pattern[0] == '!';
    if (negated) pattern.erase(0, 1);
    if (glob_match(pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

std::string key_type_of(std::string_view blob) {
  if (blob.size() < 4) return "unknown";
  std::uint32_t n = (std::uint32_t(std::uint8_t(blob[0])) << 24) | (std::uint32_t(std::uint8_t(blob[1])) << 16) |
                    (std::uint32_t(std::uint8_t(blob[2])) << 8) | std::uint32_t(std::uint8_t(blob[3]));
  if (n == 0 || n > 64 || blob.size() < 4 + n) return "unknown";
  // The server chose these bytes, and they end up in messages: key type names
  // ("ssh-ed25519", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com") use only these.
  std::string_view type = blob.substr(4, n);
  for (char c : type)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '@' || c == '.' ||
          c == '-' || c == '_' || c == '+'))
      return "unknown";
  return std::string(type);
}

}  // namespace

std::string known_hosts_name(const std::string& host, int port) {
  if (port <= 0 || port == 22) return host;
  return "[" + host + "]:" + std::to_string(port);
}

std::string host_key_description(std::string_view key_blob) {
  io::Sha256 h;
  h.update(key_blob);
  return key_type_of(key_blob) + " SHA256:" + bundle::base64_encode(h.finish_raw(), /*pad=*/false);
}

HostKeyCheck check_known_hosts_file(const fs::path& file, const std::string& host, int port, std::string_view key_blob) {
  HostKeyCheck result;
  std::error_code ec;
  if (!fs::exists(file, ec)) return result;
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::io, "hub", "cannot read known_hosts file '" + file.string() + "': " + errno_text(errno));
  const std::string name = known_hosts_name(host, port);
  const std::string type = key_type_of(key_blob);
  std::string line;
  int number = 0;
  std::optional<HostKeyCheck> match, changed;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream fields(line);
    std::string first;
    if (!(fields >> first) || first[0] == '#') continue;
    std::string marker;
    if (first[0] == '@') {
      marker = first;
      if (!(fields >> first)) continue;
    }
    std::string key_type, key_text;
    if (!(fields >> key_type >> key_text)) continue;
    if (marker == "@cert-authority" || (!marker.empty() && marker != "@revoked")) continue;
    auto blob = bundle::base64_decode(key_text);
    if (!blob) continue;
    if (marker == "@revoked") {  // revoked for every host, whichever host field it has
      if (*blob == key_blob) return HostKeyCheck{HostKeyStatus::revoked, file, number};
      continue;
    }
    if (!hosts_match(first, name)) continue;
    if (*blob == key_blob) {
      if (!match) match = HostKeyCheck{HostKeyStatus::match, file, number};
    } else if (key_type == type && !changed) {
      // ssh only calls a host "changed" when it lists a key of the same type; a key of
      // another type leaves this one unknown.
      changed = HostKeyCheck{HostKeyStatus::changed, file, number};
    }
  }
  if (match) return *match;
  if (changed) return *changed;
  return result;
}

std::vector<fs::path> known_hosts_files(const fs::path& explicit_file) {
  if (!explicit_file.empty()) return {explicit_file};
  if (const char* e = std::getenv("GAGGLE_SSH_KNOWN_HOSTS"); e && *e) return {fs::path(e)};
  std::vector<fs::path> files;
  if (const char* home = std::getenv("HOME"); home && *home) files.push_back(fs::path(home) / ".ssh" / "known_hosts");
  files.push_back("/etc/ssh/ssh_known_hosts");
  return files;
}

HostKeyCheck check_known_hosts(const std::vector<fs::path>& files, const std::string& host, int port,
                               std::string_view key_blob) {
  // A revocation anywhere wins; then a match; then a contradiction.
  std::optional<HostKeyCheck> match, changed;
  for (const auto& f : files) {
    HostKeyCheck c = check_known_hosts_file(f, host, port, key_blob);
    if (c.status == HostKeyStatus::revoked) return c;
    if (c.status == HostKeyStatus::match && !match) match = c;
    if (c.status == HostKeyStatus::changed && !changed) changed = c;
  }
  if (match) return *match;
  if (changed) return *changed;
  return HostKeyCheck{};
}

}  // namespace gaggle::hub
