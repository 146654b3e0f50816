#include "bundle/allowed_signers.h"

#include <ctime>

#include "io/atomic_file.h"
#include "io/error.h"

namespace gaggle::bundle {
namespace {

// Splits on unquoted `sep` (whitespace when sep == 0); quotes are kept in the pieces.
std::vector<std::string> split_unquoted(std::string_view s, char sep, bool* unbalanced) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quote = false, have = false;
  for (char c : s) {
    bool is_sep = sep ? c == sep : (c == ' ' || c == '\t');
    if (c == '"') in_quote = !in_quote;
    if (is_sep && !in_quote) {
      if (have || sep) out.push_back(cur);
      cur.clear();
      have = false;
      continue;
    }
    cur.push_back(c);
    have = true;
  }
  if (sep || have) out.push_back(cur);
  if (unbalanced) *unbalanced = in_quote;
  return out;
}

std::string unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return std::string(s.substr(1, s.size() - 2));
  return std::string(s);
}

bool looks_like_key_type(std::string_view s) {
  return s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-") || s.starts_with("rsa-");
}

bool glob(std::string_view s, std::string_view p) {
  std::size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string format_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

std::string AllowedSigner::principal_text() const {
  std::string s;
  for (const auto& p : principals) s += (s.empty() ? "" : ",") + p;
  return s;
}

std::optional<std::int64_t> parse_signer_time(std::string_view text) {
  bool utc = false;
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
    utc = true;
    text.remove_suffix(1);
  }
  if (text.size() != 8 && text.size() != 12 && text.size() != 14) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t n) { return std::stoi(std::string(text.substr(pos, n))); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  if (text.size() >= 12) {
    tm.tm_hour = num(8, 2);
    tm.tm_min = num(10, 2);
  }
  if (text.size() == 14) tm.tm_sec = num(12, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  tm.tm_isdst = -1;
  std::time_t t = utc ? ::timegm(&tm) : ::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<std::int64_t>(t);
}

bool match_pattern_list(std::string_view value, const std::vector<std::string>& patterns) {
  bool matched = false;
  for (const auto& pat : patterns) {
    if (!pat.empty() && pat[0] == '!') {
      if (glob(value, std::string_view(pat).substr(1))) return false;
    } else if (glob(value, pat)) {
      matched = true;
    }
  }
  return matched;
}

std::vector<AllowedSigner> parse_allowed_signers(std::string_view text, const std::string& source) {
  std::vector<AllowedSigner> out;
  int line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    std::string where = source + ":" + std::to_string(line_no);
    bool unbalanced = false;
    auto fields = split_unquoted(line.substr(first), 0, &unbalanced);
    if (unbalanced) throw_error(ErrorCode::invalid, "bundle", where + ": unbalanced quote");
    if (fields.size() < 3)
      throw_error(ErrorCode::invalid, "bundle", where + ": expected 'principals [options] keytype key', got " + std::to_string(fields.size()) + " fields",
                  "a line looks like: alice@example.com namespaces=\"gaggle-bundle\" ssh-ed25519 AAAA...");
    AllowedSigner s;
    s.line = line_no;
    for (const auto& p : split_unquoted(unquote(fields[0]), ',', nullptr))
      if (!p.empty()) s.principals.push_back(p);
    if (s.principals.empty()) throw_error(ErrorCode::invalid, "bundle", where + ": no principal");
    std::size_t key_at = 1;
    if (!looks_like_key_type(fields[1])) {
      key_at = 2;
      for (const auto& opt : split_unquoted(fields[1], ',', nullptr)) {
        auto eq = opt.find('=');
        std::string name = opt.substr(0, eq);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = eq == std::string::npos ? "" : unquote(opt.substr(eq + 1));
        if (name == "cert-authority" && eq == std::string::npos) {
          s.cert_authority = true;
        } else if (name == "namespaces" && eq != std::string::npos) {
          for (const auto& n : split_unquoted(value, ',', nullptr))
            if (!n.empty()) s.namespaces.push_back(n);
        } else if ((name == "valid-after" || name == "valid-before") && eq != std::string::npos) {
          auto t = parse_signer_time(value);
          if (!t)
            throw_error(ErrorCode::invalid, "bundle", where + ": " + name + "=\"" + value + "\" is not a time",
                        "write YYYYMMDD or YYYYMMDDHHMM[SS], with Z for UTC (e.g. 20260101Z)");
          (name == "valid-after" ? s.valid_after : s.valid_before) = *t;
        } else {
          throw_error(ErrorCode::invalid, "bundle", where + ": unknown option '" + opt + "'",
                      "known options: cert-authority, namespaces=\"...\", valid-after=\"...\", valid-before=\"...\"");
        }
      }
    }
    if (fields.size() < key_at + 2) throw_error(ErrorCode::invalid, "bundle", where + ": missing the key after its type");
    std::string key_line = fields[key_at] + " " + fields[key_at + 1];
    s.key = parse_public_key(key_line, where);
    for (std::size_t i = key_at + 2; i < fields.size(); ++i) s.key.comment += (i > key_at + 2 ? " " : "") + fields[i];
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<AllowedSigner> read_allowed_signers(const std::filesystem::path& path) {
  return parse_allowed_signers(io::read_file(path), path.string());
}

const AllowedSigner& find_trusted_signer(const std::vector<AllowedSigner>& signers, const PublicKey& key, std::string_view ns,
                                         std::int64_t now, const std::string& source, std::string_view principal) {
  std::string first_reason;
  bool saw_ca = false;
  for (const auto& s : signers) {
    if (!s.key.same_key(key)) continue;
    std::string where = source + ":" + std::to_string(s.line) + " (" + s.principal_text() + ")";
    std::string reason;
    if (!principal.empty() && !match_pattern_list(principal, s.principals)) {
      reason = where + ": key " + key.fingerprint() + " is trusted for other principals, not '" + std::string(principal) + "'";
    } else if (s.cert_authority) {
      saw_ca = true;
      reason = where + ": the key is listed only as a cert-authority; gaggle does not accept SSH certificates";
    } else if (!s.namespaces.empty() && !match_pattern_list(ns, s.namespaces)) {
      std::string list;
      for (const auto& n : s.namespaces) list += (list.empty() ? "" : ",") + n;
      reason = where + ": signer is not trusted for namespace '" + std::string(ns) + "' (namespaces=\"" + list + "\")";
    } else if (s.valid_after && now < *s.valid_after) {
      reason = where + ": key " + key.fingerprint() + " is not valid before " + format_time(*s.valid_after);
    } else if (s.valid_before && now > *s.valid_before) {
      reason = where + ": key " + key.fingerprint() + " expired at " + format_time(*s.valid_before);
    } else {
      return s;
    }
    if (first_reason.empty()) first_reason = reason;
  }
  if (!first_reason.empty())
    throw_error(ErrorCode::auth, "bundle", first_reason,
                saw_ca ? "list the signer's plain key (not the CA) in the allowed-signers file"
                       : "ask the owner of the trust file to renew or widen the entry, if that is intended");
  throw_error(ErrorCode::auth, "bundle", "signer key " + key.fingerprint() + " is not trusted: it is not in " + source,
              "if you trust this signer, add a line to the allowed-signers file: PRINCIPAL namespaces=\"gaggle-bundle\" " +
                  key.type + " " + key.to_openssh().substr(key.type.size() + 1));
}

}  // namespace gaggle::bundle
