#include "hub/detail/index_cache.h"

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub::detail {
namespace {

fs::path cache_dir(const fs::path& pool_dir) { return pool_dir / ".gaggle" / "index"; }

}  // namespace

std::optional<CachedIndex> load_cached_index(const fs::path& pool_dir, const std::string& url) {
  std::error_code ec;
  fs::path dir = cache_dir(pool_dir);
  if (!fs::is_regular_file(dir / "state.json", ec) || !fs::is_regular_file(dir / "pool.json", ec)) return std::nullopt;
  try {  // a cache is an optimisation: anything wrong with it means "download again"
    nlohmann::json state = nlohmann::json::parse(io::read_file(dir / "state.json"));
    if (!state.is_object() || state.value("url", "") != url) return std::nullopt;
    CachedIndex c;
    c.validators.etag = state.value("etag", "");
    c.validators.last_modified = state.value("last_modified", "");
    c.body = io::read_file(dir / "pool.json");
    if (c.validators.empty() || io::sha256_hex(c.body) != state.value("sha256", "")) return std::nullopt;
    return c;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void save_cached_index(const fs::path& pool_dir, const std::string& url, const HttpValidators& validators,
                       const std::string& body) {
  fs::path dir = cache_dir(pool_dir);
  std::error_code ec;
  if (validators.empty()) {  // nothing to ask the server with next time
    fs::remove(dir / "state.json", ec);
    fs::remove(dir / "pool.json", ec);
    return;
  }
  fs::create_directories(dir);
  io::write_file_atomic(dir / "pool.json", body);
  nlohmann::ordered_json state = {{"url", url},
                                  {"etag", validators.etag},
                                  {"last_modified", validators.last_modified},
                                  {"sha256", io::sha256_hex(body)}};
  io::write_file_atomic(dir / "state.json", state.dump(2) + "\n");
}

}  // namespace gaggle::hub::detail
