#include "bundle/ssh_wire.h"

#include "io/error.h"

namespace gaggle::bundle {

void WireWriter::u32(std::uint32_t v) {
  out_.push_back(static_cast<char>((v >> 24) & 0xff));
  out_.push_back(static_cast<char>((v >> 16) & 0xff));
  out_.push_back(static_cast<char>((v >> 8) & 0xff));
  out_.push_back(static_cast<char>(v & 0xff));
}

void WireWriter::string(std::string_view s) {
  u32(static_cast<std::uint32_t>(s.size()));
  out_.append(s);
}

std::string_view WireReader::raw(std::size_t n, const char* field) {
  if (n > remaining())
    throw_error(ErrorCode::invalid, "bundle",
                source_ + ": truncated: " + field + " needs " + std::to_string(n) + " bytes, " +
                    std::to_string(remaining()) + " left");
  std::string_view s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::uint8_t WireReader::u8(const char* field) { return static_cast<std::uint8_t>(raw(1, field)[0]); }

std::uint32_t WireReader::u32(const char* field) {
  std::string_view b = raw(4, field);
  return (std::uint32_t(static_cast<unsigned char>(b[0])) << 24) | (std::uint32_t(static_cast<unsigned char>(b[1])) << 16) |
         (std::uint32_t(static_cast<unsigned char>(b[2])) << 8) | std::uint32_t(static_cast<unsigned char>(b[3]));
}

std::string_view WireReader::string(const char* field) {
  std::uint32_t n = u32(field);
  return raw(n, field);
}

void WireReader::expect_done(const char* what) const {
  if (!done())
    throw_error(ErrorCode::invalid, "bundle",
                source_ + ": " + std::to_string(remaining()) + " unexpected bytes after " + what);
}

}  // namespace gaggle::bundle
