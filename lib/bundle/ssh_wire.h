#pragma once
// The SSH wire encoding (RFC 4251 §5): uint32 big-endian, and "string" = uint32 length
// + bytes. Used by OpenSSH keys, SSHSIG signatures and the ssh-agent protocol.
#include <cstdint>
#include <string>
#include <string_view>

namespace gaggle::bundle {

class WireWriter {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v);
  void string(std::string_view s);
  void raw(std::string_view s) { out_.append(s); }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Reads from a borrowed buffer. Every read is bounds-checked: running off the end is an
// Error{invalid} that names `source` and the field being read.
class WireReader {
 public:
  WireReader(std::string_view data, std::string source) : data_(data), source_(std::move(source)) {}
  std::uint8_t u8(const char* field);
  std::uint32_t u32(const char* field);
  std::string_view string(const char* field);
  std::string_view raw(std::size_t n, const char* field);
  std::size_t remaining() const { return data_.size() - pos_; }
  bool done() const { return pos_ == data_.size(); }
  // Throws Error{invalid} if bytes are left over.
  void expect_done(const char* what) const;

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  std::string source_;
};

}  // namespace gaggle::bundle
