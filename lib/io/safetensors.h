#pragma once
// safetensors files: a validating, memory-mapped reader and an exact writer.
//
// Layout (the spec): 8 bytes little-endian u64 N; N bytes of UTF-8 JSON, padded with
// spaces to a multiple of 8, mapping tensor names to {"dtype","shape","data_offsets"}
// plus an optional "__metadata__" string map; then the tensors' bytes back to back.
//
// The reader trusts nothing (files come from the network): the header length must fit
// the file and stay under 100 MB, the JSON must parse, dtypes must be known, shapes
// non-negative, every byte range must match its shape, lie inside the data area, and
// the ranges must tile it exactly — no overlap, no hole, nothing trailing. Every
// failure is an Error{invalid} naming the file and the tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/mapped_file.h"

namespace gaggle::io {

inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets relative to the start of the data area
  std::uint64_t end = 0;

  std::uint64_t nbytes() const { return end - begin; }
  std::int64_t numel() const;
};

// The parsed, validated header of a safetensors image held in memory.
struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in data order (by offset)
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + N

  // Validates `image` (the whole file's bytes). `source` names it in errors.
  static SafetensorsHeader parse(std::span<const std::byte> image, const std::string& source);
};

class SafetensorsFile {
 public:
  // Maps and validates. Throws Error{not_found|io|invalid|unsupported}.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::filesystem::path& path() const { return file_.path(); }

  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws Error{not_found} naming file and tensor.
  const TensorInfo& at(const std::string& name) const;
  // Zero-copy view of a tensor's bytes; valid while this object lives.
  std::span<const std::byte> data(const TensorInfo& info) const;
  std::span<const std::byte> data(const std::string& name) const { return data(at(name)); }
  std::uint64_t file_size() const { return file_.bytes().size(); }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t> index_;
};

// Collects tensors and writes them as one safetensors file, tensors sorted by name,
// header compact and space-padded to a multiple of 8, "__metadata__" first.
class SafetensorsWriter {
 public:
  // Copies the bytes. Throws Error{invalid} if the size does not match dtype × shape or
  // the name is taken.
  void add(const std::string& name, DType dtype, std::vector<std::int64_t> shape, std::span<const std::byte> data);
  void add_f32(const std::string& name, std::vector<std::int64_t> shape, std::span<const float> values);
  // Stores float values as `dtype`: F32 as is, F16 or BF16 rounded to nearest even.
  // Throws Error{invalid} for any other dtype.
  void add_floats_as(const std::string& name, DType dtype, std::vector<std::int64_t> shape, std::span<const float> values);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The exact bytes of the header block (the 8-byte length included).
  std::string header_bytes() const;
  // Atomic (temp + fsync + rename).
  void write(const std::filesystem::path& path) const;
  std::size_t size() const { return tensors_.size(); }

 private:
  struct Entry {
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::map<std::string, Entry> tensors_;  // sorted by name
  std::map<std::string, std::string> metadata_;
};

std::string shape_to_string(const std::vector<std::int64_t>& shape);

}  // namespace gaggle::io
