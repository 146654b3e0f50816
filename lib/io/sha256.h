#pragma once
// SHA-256 through OpenSSL's EVP interface: one-shot, streaming and whole-file.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace gaggle::io {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view data);
  // The 32-byte digest; the object must not be updated afterwards.
  std::string finish_raw();
  // The digest as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_hex(std::string_view data);
// Streams the file (no full read into memory). Throws Error{not_found|io}.
std::string sha256_file_hex(const std::filesystem::path& path);

std::string to_hex(std::string_view raw);

}  // namespace gaggle::io
