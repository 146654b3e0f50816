#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"

namespace gaggle::io {
namespace {

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw_error(ErrorCode::invalid, "io", source + ": " + what,
              "the file is not a valid safetensors file; re-download or re-export it");
}

std::uint64_t read_u64_le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint64_t json_uint(const nlohmann::json& v, const std::string& source, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) {
    if (v.get<std::int64_t>() < 0) bad(source, what + " is negative");
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  bad(source, what + " is not a non-negative integer");
}

TensorInfo parse_entry(const std::string& name, const nlohmann::json& entry, const std::string& source) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) bad(source, where + ": entry is not a JSON object");
  for (const auto& [key, value] : entry.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") bad(source, where + ": unknown field '" + key + "'");
  }
  auto dt = entry.find("dtype");
  auto sh = entry.find("shape");
  auto off = entry.find("data_offsets");
  if (dt == entry.end() || !dt->is_string()) bad(source, where + ": missing or non-string 'dtype'");
  if (sh == entry.end() || !sh->is_array()) bad(source, where + ": missing or non-array 'shape'");
  if (off == entry.end() || !off->is_array() || off->size() != 2)
    bad(source, where + ": 'data_offsets' must be an array [begin, end]");

  TensorInfo info;
  info.name = name;
  const std::string dtype_str = dt->get<std::string>();
  if (is_unsupported_float8(dtype_str))
    throw_error(ErrorCode::unsupported, "io", source + ": " + where + ": dtype " + dtype_str + " is not supported",
                "convert the checkpoint to F32, F16 or BF16");
  auto dtype = dtype_from_name(dtype_str);
  if (!dtype) bad(source, where + ": unknown dtype '" + dtype_str + "'");
  info.dtype = *dtype;

  // numel * size must not overflow: check as we multiply.
  std::uint64_t bytes = dtype_size(info.dtype);
  bool overflow = false;
  for (const auto& d : *sh) {
    if (!d.is_number_integer()) bad(source, where + ": shape holds a non-integer");
    if (d.is_number_unsigned() ? false : d.get<std::int64_t>() < 0) bad(source, where + ": negative dimension in shape");
    std::uint64_t dim = d.get<std::uint64_t>();
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) bad(source, where + ": dimension too large");
    info.shape.push_back(static_cast<std::int64_t>(dim));
    if (dim != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
    bytes *= dim;
  }
  info.begin = json_uint((*off)[0], source, where + ": data_offsets[0]");
  info.end = json_uint((*off)[1], source, where + ": data_offsets[1]");
  if (info.end < info.begin) bad(source, where + ": data_offsets end " + std::to_string(info.end) + " is before begin " + std::to_string(info.begin));
  if (overflow || bytes != info.end - info.begin)
    bad(source, where + ": shape " + shape_to_string(info.shape) + " of " + dtype_str + " needs " +
                    (overflow ? std::string("more than 2^64") : std::to_string(bytes)) + " bytes but data_offsets span " +
                    std::to_string(info.end - info.begin));
  return info;
}

}  // namespace

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsHeader SafetensorsHeader::parse(std::span<const std::byte> image, const std::string& source) {
  if (image.size() < 8) bad(source, "file is " + std::to_string(image.size()) + " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = read_u64_le(image.data());
  if (n > kSafetensorsMaxHeader) bad(source, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > image.size() - 8)
    bad(source, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(image.size()) + " bytes)");
  if (n == 0 || static_cast<char>(image[8]) != '{') bad(source, "header is not a JSON object");

  const char* text = reinterpret_cast<const char*>(image.data() + 8);
  nlohmann::json header;
  if (std::string why = json_nesting_problem(std::string_view(text, n)); !why.empty()) bad(source, "header: " + why);
  try {
    header = nlohmann::json::parse(text, text + n);
  } catch (const nlohmann::json::parse_error& e) {
    bad(source, "header is not valid JSON (byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception& e) {
    // e.g. out_of_range for a number too large for a double (found by the fuzzer)
    bad(source, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) bad(source, "header is not a JSON object");

  SafetensorsHeader out;
  out.data_start = 8 + n;
  const std::uint64_t data_size = image.size() - out.data_start;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad(source, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(source, "__metadata__['" + mk + "'] is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    out.tensors.push_back(parse_entry(key, value, source));
  }

  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : out.tensors) {
    if (t.end > data_size)
      bad(source, "tensor '" + t.name + "': data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                      "] lie outside the data area (" + std::to_string(data_size) + " bytes)");
    if (t.begin < cursor)
      bad(source, "tensor '" + t.name + "' overlaps tensor '" + prev->name + "' (bytes " + std::to_string(t.begin) + " to " +
                      std::to_string(cursor) + ")");
    if (t.begin > cursor)
      bad(source, "hole of " + std::to_string(t.begin - cursor) + " bytes before tensor '" + t.name + "' (at data offset " +
                      std::to_string(cursor) + ")");
    cursor = t.end;
    prev = &t;
  }
  if (cursor != data_size)
    bad(source, std::to_string(data_size - cursor) + " bytes after the last tensor" +
                    (prev ? " '" + prev->name + "'" : std::string()) + " belong to no tensor");
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.file_ = MappedFile(path);
  f.header_ = SafetensorsHeader::parse(f.file_.bytes(), path.string());
  for (std::size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_[f.header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  if (const TensorInfo* t = find(name)) return *t;
  throw_error(ErrorCode::not_found, "io", path().string() + ": no tensor '" + name + "'");
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& info) const {
  return file_.bytes().subspan(header_.data_start + info.begin, info.nbytes());
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                            std::span<const std::byte> data) {
  if (name.empty() || name == "__metadata__") throw_error(ErrorCode::invalid, "io", "invalid tensor name '" + name + "'");
  if (tensors_.count(name)) throw_error(ErrorCode::invalid, "io", "tensor '" + name + "' added twice");
  std::uint64_t expected = dtype_size(dtype);
  for (auto d : shape) {
    if (d < 0) throw_error(ErrorCode::invalid, "io", "tensor '" + name + "': negative dimension");
    expected *= static_cast<std::uint64_t>(d);
  }
  if (expected != data.size())
    throw_error(ErrorCode::invalid, "io", "tensor '" + name + "': shape " + shape_to_string(shape) + " of " +
                                              std::string(dtype_name(dtype)) + " needs " + std::to_string(expected) +
                                              " bytes, got " + std::to_string(data.size()));
  tensors_[name] = Entry{dtype, std::move(shape), std::vector<std::byte>(data.begin(), data.end())};
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<std::int64_t> shape, std::span<const float> values) {
  add(name, DType::F32, std::move(shape), std::as_bytes(values));
}

void SafetensorsWriter::add_floats_as(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                                      std::span<const float> values) {
  if (dtype == DType::F32) return add_f32(name, std::move(shape), values);
  if (dtype != DType::F16 && dtype != DType::BF16)
    throw_error(ErrorCode::invalid, "io",
                "cannot store '" + name + "' as " + std::string(dtype_name(dtype)) + ": floats are written as F32, F16 or BF16");
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    bits[i] = dtype == DType::F16 ? f32_to_f16_bits(values[i]) : f32_to_bf16_bits(values[i]);
  add(name, dtype, std::move(shape), std::as_bytes(std::span<const std::uint16_t>(bits)));
}

std::string SafetensorsWriter::header_bytes() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::uint64_t offset = 0;
  for (const auto& [name, e] : tensors_) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = std::string(dtype_name(e.dtype));
    entry["shape"] = e.shape;
    entry["data_offsets"] = {offset, offset + e.bytes.size()};
    header[name] = entry;
    offset += e.bytes.size();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  std::uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  AtomicFileWriter w(path);
  w.write(header_bytes());
  for (const auto& [name, e] : tensors_) w.write(std::span<const std::byte>(e.bytes));
  w.commit();
}

}  // namespace gaggle::io
