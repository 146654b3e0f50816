#include "hub/pool.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/json_schema.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

[[noreturn]] void bad(const std::string& source, const std::string& pointer, const std::string& what) {
  throw Error(ErrorCode::invalid, "hub", source + ": " + pointer + ": " + what,
              "pool.json is written by 'gaggle pull'; pull again into a fresh pool directory");
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& source, const std::string& at,
                       bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) bad(source, at + "/" + key, "missing");
    return {};
  }
  if (!it->is_string()) bad(source, at + "/" + key, "must be a string");
  return it->get<std::string>();
}

bool safe_relative(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    std::string part = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

}  // namespace

const PoolBundle* Pool::find(const std::string& name, const std::string& version) const {
  for (const auto& b : bundles)
    if (b.name == name && b.version == version) return &b;
  return nullptr;
}

Pool parse_pool(const std::string& text, const std::string& source) {
  nlohmann::json j = io::parse_json(text, source);
  if (!j.is_object()) bad(source, "", "must be a JSON object");
  Pool pool;
  auto fv = j.find("format_version");
  if (fv != j.end() && fv->is_number_integer() && fv->get<int>() > kPoolFormatVersion)
    throw Error(ErrorCode::unsupported, "hub",
                source + ": format_version " + std::to_string(fv->get<int>()) + " is newer than this gaggle (" +
                    std::to_string(kPoolFormatVersion) + ")",
                "upgrade gaggle");
  io::validate_json(j, io::embedded_schema("pool"), source);  // manifests/pool.schema.json
  if (fv == j.end() || !fv->is_number_integer()) bad(source, "/format_version", "missing or not an integer");
  pool.format_version = fv->get<int>();
  if (pool.format_version > kPoolFormatVersion)
    throw Error(ErrorCode::unsupported, "hub",
                source + ": format_version " + std::to_string(pool.format_version) + " is newer than this gaggle (" +
                    std::to_string(kPoolFormatVersion) + ")",
                "upgrade gaggle");
  if (pool.format_version < 1) bad(source, "/format_version", "must be at least 1");
  pool.hub = get_string(j, "hub", source, "", false);
  pool.commit = get_string(j, "commit", source, "", false);
  pool.updated = get_string(j, "updated", source, "", false);
  auto bs = j.find("bundles");
  if (bs == j.end() || !bs->is_array()) bad(source, "/bundles", "missing or not an array");
  for (std::size_t i = 0; i < bs->size(); ++i) {
    const auto& b = (*bs)[i];
    std::string at = "/bundles/" + std::to_string(i);
    if (!b.is_object()) bad(source, at, "must be an object");
    PoolBundle e;
    e.name = get_string(b, "name", source, at);
    e.version = get_string(b, "version", source, at);
    e.path = get_string(b, "path", source, at);
    e.principal = get_string(b, "principal", source, at, false);
    e.key_fingerprint = get_string(b, "key_fingerprint", source, at, false);
    e.manifest_sha256 = get_string(b, "manifest_sha256", source, at);
    // name, version and manifest_sha256 have passed pool.schema.json's patterns above.
    if (!safe_relative(e.path)) bad(source, at + "/path", "'" + e.path + "' is not a safe relative path");
    if (auto by = b.find("bytes"); by != b.end()) {
      if (!by->is_number_unsigned() && !(by->is_number_integer() && by->get<std::int64_t>() >= 0))
        bad(source, at + "/bytes", "must be a non-negative integer");
      e.bytes = by->get<std::uint64_t>();
    }
    if (pool.find(e.name, e.version)) bad(source, at, e.name + "@" + e.version + " is listed twice");
    pool.bundles.push_back(std::move(e));
  }
  return pool;
}

Pool read_pool(const fs::path& pool_dir) {
  fs::path file = pool_dir / "pool.json";
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw Error(ErrorCode::not_found, "hub", "'" + pool_dir.string() + "' is not a pool (no pool.json)",
                "make one with 'gaggle pull --hub URL --pool " + pool_dir.string() + " --trust ALLOWED_SIGNERS'");
  return parse_pool(io::read_file(file), file.string());
}

std::string serialize_pool(const Pool& in) {
  Pool pool = in;
  std::sort(pool.bundles.begin(), pool.bundles.end(), [](const PoolBundle& a, const PoolBundle& b) {
    return a.name != b.name ? a.name < b.name : a.version < b.version;
  });
  nlohmann::ordered_json j;
  j["format_version"] = pool.format_version;
  j["hub"] = pool.hub;
  j["commit"] = pool.commit;
  j["updated"] = pool.updated;
  j["bundles"] = nlohmann::ordered_json::array();
  for (const auto& b : pool.bundles)
    j["bundles"].push_back({{"name", b.name},
                            {"version", b.version},
                            {"path", b.path},
                            {"principal", b.principal},
                            {"key_fingerprint", b.key_fingerprint},
                            {"manifest_sha256", b.manifest_sha256},
                            {"bytes", b.bytes}});
  return j.dump(2) + "\n";
}

void write_pool(const fs::path& pool_dir, Pool pool) {
  io::write_file_atomic(pool_dir / "pool.json", serialize_pool(pool));
}

}  // namespace gaggle::hub
