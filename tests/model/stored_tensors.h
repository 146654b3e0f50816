#pragma once
// Rewriting checkpoints in the loading tests: read every tensor of a safetensors file as
// f32 values, edit names, shapes, values or the stored dtype, and write the file back.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/safetensors.h"

namespace gaggle::test {

struct StoredTensor {
  std::string name;
  io::DType dtype = io::DType::F32;  // what write_safetensors stores it as
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

inline std::vector<StoredTensor> read_safetensors(const std::filesystem::path& file) {
  auto f = io::SafetensorsFile::open(file);
  std::vector<StoredTensor> out;
  for (const auto& t : f.tensors()) {
    StoredTensor x{t.name, io::DType::F32, t.shape, std::vector<float>(t.numel())};
    io::convert_to_f32(t.dtype, f.data(t), x.values.data(), x.values.size());
    out.push_back(std::move(x));
  }
  return out;
}

inline void write_safetensors(const std::vector<StoredTensor>& tensors, const std::filesystem::path& file) {
  io::SafetensorsWriter w;
  for (const auto& t : tensors) {
    if (t.dtype == io::DType::F32) {
      w.add_f32(t.name, t.shape, t.values);
      continue;
    }
    std::vector<std::uint16_t> bits;
    for (float v : t.values)
      bits.push_back(t.dtype == io::DType::F16 ? io::f32_to_f16_bits(v) : io::f32_to_bf16_bits(v));
    w.add(t.name, t.dtype, t.shape, std::as_bytes(std::span(bits)));
  }
  w.write(file);
}

}  // namespace gaggle::test
