#pragma once
// The tensors a pool already holds (issue #16): for each installed bundle's safetensors
// files, where the header and every tensor sit (file, byte range), keyed by sha256. A
// pull that must rebuild a file from its parts takes what it can from here and
// downloads only the rest. What read() returns has the sha256 asked for (a damaged local
// file just means a download); the caller still checks it against the signed index.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "hub/pool.h"

namespace gaggle::hub::detail {

class LocalParts {
 public:
  LocalParts(std::filesystem::path pool_dir, const Pool& pool) : pool_dir_(std::move(pool_dir)), pool_(pool) {}

  // The `size` bytes stored under `sha256`, or nothing when no installed file has them
  // (or the file's bytes there no longer hash to it).
  std::optional<std::string> read(const std::string& sha256, std::uint64_t size);

  // Makes a bundle installed during this pull a source too.
  void add_bundle(const std::filesystem::path& bundle_dir);

 private:
  struct Location {
    std::filesystem::path file;
    std::uint64_t offset = 0, size = 0;
  };
  void load();

  std::filesystem::path pool_dir_;
  const Pool& pool_;
  bool loaded_ = false;
  std::map<std::string, Location> parts_;
};

}  // namespace gaggle::hub::detail
