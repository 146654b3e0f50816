#pragma once
// The base fingerprint (design.md §4): what experts are bound to. Torch-free.
//
// "sha256:<64 hex>" over every tensor of the checkpoint's weight files, sorted by name:
// for each, "<name>\n<DTYPE>\n<shape as [a, b]>\n<byte count>\n" then its raw bytes,
// after the line "gaggle-base-fingerprint-v1\n". Independent of sharding and of the
// files' header layout; changes with any name, shape, dtype or byte.
//
// Cached in <base_dir>/.gaggle-fingerprint.json keyed by each weight file's name, size
// and mtime, written atomically; a second call with unchanged files reads the cache. A
// directory that cannot be written is fingerprinted without caching.
#include <filesystem>
#include <string>

namespace gaggle::model {

inline constexpr const char* kFingerprintCacheName = ".gaggle-fingerprint.json";

struct FingerprintOptions {
  bool use_cache = true;  // false: always rehash (and do not write the cache)
};

// Throws what HfCheckpoint::open throws.
std::string base_fingerprint(const std::filesystem::path& base_dir, const FingerprintOptions& options = {});

}  // namespace gaggle::model
