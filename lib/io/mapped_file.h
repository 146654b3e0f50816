#pragma once
// A read-only memory mapping of a whole file (RAII). Zero-length files map to an
// empty span. Move-only.
#include <cstddef>
#include <filesystem>
#include <span>

namespace gaggle::io {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error{not_found|io} naming the path.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release();
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace gaggle::io
