#pragma once
// The routing decision's raw dot products u · key in a kernel of our own, where the CPU
// has AVX-512, or AVX2 with FMA (issue #15, item 1). Torch-free: plain row-major float
// arrays.
//
// Why not the BLAS: the keys of a layer never change, but every sgemm call packs its
// operands again, and packing the tokens costs as much for 166 keys as for the base
// layer's 512 outputs; the score GEMM ran at about 0.85 of the base GEMM's rate. Here the
// keys are packed once, when the layer is made, into panels laid out as the kernel reads
// them (32 keys for the 512-bit kernel, 16 for the 256-bit one: two registers either
// way), and the token rows are read where they lie (docs/performance.md).
#include <cstdint>
#include <vector>

namespace gaggle::route::detail {

// The two kernels: 512-bit registers (AVX-512F) or 256-bit (AVX2 and FMA).
enum class ScoreKernel { avx2, avx512 };

// True where PackedKeys runs: AVX2 with FMA, or AVX-512, on this CPU.
bool packed_keys_supported();
// True where this CPU runs that kernel.
bool score_kernel_runs(ScoreKernel kernel);

class PackedKeys {
 public:
  // keys [n, d] row-major, copied into panels for the widest kernel this CPU runs. Only
  // where packed_keys_supported().
  PackedKeys(const float* keys, std::int64_t n, std::int64_t d);
  // The same for a given kernel (tests compare both on one CPU). Only where
  // score_kernel_runs(kernel).
  PackedKeys(const float* keys, std::int64_t n, std::int64_t d, ScoreKernel kernel);

  // raw[t * ld + e] = u[t] · key[e] for t < rows, e < n (u [rows, d] row-major; ld >= n:
  // the columns from n on are not written). Single-threaded: the caller splits the tokens.
  void scores(const float* u, std::int64_t rows, float* raw, std::int64_t ld) const;
  // The same for rows wherever they lie: raw[t][e] = rows[t] · key[e] for t < count,
  // e < n (each rows[t] holds d floats, each raw[t] n). A router that scores scattered
  // tokens against a cluster of keys reads them in place instead of gathering them.
  void scores(const float* const* rows, std::int64_t count, float* const* raw) const;

  std::int64_t keys() const { return n_; }
  std::int64_t width() const { return d_; }
  ScoreKernel kernel() const { return kernel_; }

 private:
  std::int64_t n_ = 0, d_ = 0;
  ScoreKernel kernel_ = ScoreKernel::avx2;
  // [ceil(n / panel)][d][panel] with panel = 32 (avx512) or 16 (avx2): key e0 + c at
  // [p][j][c], zero past n
  std::vector<float> panels_;
};

}  // namespace gaggle::route::detail
