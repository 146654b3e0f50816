#pragma once
// One expert's low-rank update on the token rows routed to it, in a single pass per row
// (issue #15, item 1). Torch-free: plain row-major float arrays.
//
// For each of the expert's slots s (token t_s, weight w_s):
//
//   out[t_s] = (first contribution to t_s ? base[t_s] : out[t_s]) + w_s · B (A u[t_s])
//
// (base null: 0 instead of base[t_s], for a partial sum that is added to the output later)
//
// with A [r, d_in] and B [d_out, r] as stored (PEFT's lora_A / lora_B layout). The
// general path (two BLAS calls per chunk of rows) copies each chunk's token rows into a
// buffer, lets the BLAS pack the expert's factors again on every call, and writes
// B (A u) to a second buffer before adding it to the output: three extra passes over
// 2 KiB rows for 64 multiply-adds per element of arithmetic. This kernel reads each
// token row where it lies, keeps A u (r numbers) in registers and adds B's product
// straight into the output row.
//
// The factors may be float32 or bfloat16 (a16/b16: the upper halves of float32 bit
// patterns, as safetensors' BF16 stores them). 16-bit factors halve the bytes a large
// pool streams from memory (issue #15): each element is widened to float32 as it is
// loaded, and the arithmetic stays float32. Where the CPU has AVX-512 the two products run
// in 512-bit registers (lora_rows_avx512); the dot-product path for a few rows stays 256-bit.
#include <cstdint>

namespace gaggle::route::detail {

// The factors and shapes of one expert, and the output it adds into.
struct LoraRowsTarget {
  const float* a = nullptr;  // [r, d_in]
  const float* b = nullptr;  // [d_out, r]
  // The same factors in bfloat16, used where set (then a and b are ignored).
  const std::uint16_t* a16 = nullptr;  // [r, d_in]
  const std::uint16_t* b16 = nullptr;  // [d_out, r]
  // Bᵀ [r, d_out] (transpose_lora_b), where the caller made it once for many calls; null:
  // add_lora_rows transposes B itself when the rows make it pay.
  const float* bt = nullptr;
  std::int64_t r = 0, d_in = 0, d_out = 0;
  const float* u = nullptr;     // [T, d_in] the layer's input
  const float* base = nullptr;  // [T, d_out] the base layer's output; null: start from zero
  float* out = nullptr;         // [T, d_out]
  std::uint8_t* started = nullptr;  // [T] 0 until a token's row holds base + its first update
};

// True where add_lora_rows can run: AVX2 and FMA on this CPU, r a multiple of 8 and
// d_in, d_out multiples of 8.
bool lora_rows_supported(std::int64_t r, std::int64_t d_in, std::int64_t d_out);

// True where add_lora_rows computes A u and the product with Bᵀ in 512-bit registers:
// AVX-512 on this CPU and d_in, d_out multiples of 16. Twice the multiply-adds per
// instruction; on the 2-core development machine the update at N = 8 took 1.6-1.7 ms
// instead of 2.4-3.0 (docs/performance.md).
bool lora_rows_avx512(std::int64_t d_in, std::int64_t d_out);

// Tests compare the two widths on one CPU: avx2 keeps the 256-bit kernel even where
// AVX-512 is there, widest (the default) takes AVX-512 where lora_rows_avx512().
enum class LoraRowsWidth { widest, avx2 };
void set_lora_rows_width(LoraRowsWidth width);

// bt[j][c] = b[c][j] for b [d_out, r] (r, d_out multiples of 8). Only where
// lora_rows_supported().
void transpose_lora_b(const float* b, std::int64_t d_out, std::int64_t r, float* bt);
// The same from bfloat16 B, widening each element: bt stays float32.
void transpose_lora_b(const std::uint16_t* b, std::int64_t d_out, std::int64_t r, float* bt);
// Bᵀ of the target's B, whichever dtype it holds.
void transpose_target_b(const LoraRowsTarget& target, float* bt);

// From this many rows on, add_lora_rows transposes B itself (about 1,000 cycles at
// r = 16, d_out = 512, repaid within two rows): the product with Bᵀ needs no horizontal
// sums. Below it, each output is a dot product over r.
constexpr std::int64_t kLoraTransposeRows = 8;

// Adds the update for `rows` slots: token[i] (ascending or not; a token may not repeat
// within one call) with weight[i] (the routing weight times the LoRA scale). Only
// where lora_rows_supported().
void add_lora_rows(const LoraRowsTarget& target, const std::int64_t* token, const float* weight, std::int64_t rows);

}  // namespace gaggle::route::detail
