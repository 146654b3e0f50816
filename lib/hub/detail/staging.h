#pragma once
// A scratch directory under $TMPDIR (or a given parent), removed with everything in it
// when the object dies.
#include <filesystem>
#include <string>

namespace gaggle::hub::detail {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix, const std::filesystem::path& parent = {});
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace gaggle::hub::detail
