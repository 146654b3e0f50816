#pragma once
// The last static index a pool was pulled from, kept in POOL/.gaggle/ so that the next
// pull can ask the server "has it changed?" (If-None-Match / If-Modified-Since) and,
// on a 304, re-read the index from here instead of downloading it again:
//   POOL/.gaggle/index/pool.json   the index's bytes, as served
//   POOL/.gaggle/index/state.json  {"url", "etag", "last_modified", "sha256"} of those bytes
// Both are written atomically, body first; a state whose sha256 does not match the body
// (or any unreadable state) is ignored, and the next pull downloads the index whole.
// A cache ahead of pool.json (a pull killed after saving it) is harmless: on a 304 the
// cached index is processed like a downloaded one.
#include <filesystem>
#include <optional>
#include <string>

#include "hub/http.h"

namespace gaggle::hub::detail {

struct CachedIndex {
  HttpValidators validators;
  std::string body;
};

// The cached index of `url`, or nothing (none kept, another URL, or damaged).
std::optional<CachedIndex> load_cached_index(const std::filesystem::path& pool_dir, const std::string& url);

// Keeps `body` and its validators for `url`; with no validators, forgets any cached index.
void save_cached_index(const std::filesystem::path& pool_dir, const std::string& url, const HttpValidators& validators,
                       const std::string& body);

}  // namespace gaggle::hub::detail
