#pragma once
// Element types of safetensors files, with their sizes, names and conversion to float.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace gaggle::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::size_t dtype_size(DType dtype);
// The safetensors spelling: "F32", "BF16", "BOOL", ...
std::string_view dtype_name(DType dtype);
// nullopt for a name that is not a safetensors dtype we support.
std::optional<DType> dtype_from_name(std::string_view name);
// True for the 8-bit float types of the spec (F8_E4M3, F8_E5M2, ...): known, not supported.
bool is_unsupported_float8(std::string_view name);

// Converts `count` elements of F64/F32/F16/BF16 data (little-endian, any alignment)
// to float. Throws Error{unsupported} for other dtypes.
void convert_to_f32(DType dtype, std::span<const std::byte> src, float* dst, std::size_t count);
// Float to half or bfloat16 bits (round to nearest even), for writers.
std::uint16_t f32_to_f16_bits(float value);
std::uint16_t f32_to_bf16_bits(float value);
float f16_bits_to_f32(std::uint16_t bits);
float bf16_bits_to_f32(std::uint16_t bits);

}  // namespace gaggle::io
