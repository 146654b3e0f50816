#pragma once
// The routing decision's raw dot products u · key in a kernel of our own, where the CPU
// has AVX-512 (issue #15, item 1). Torch-free: plain row-major float arrays.
//
// Why not the BLAS: the keys of a layer never change, but every sgemm call packs its
// operands again, and packing the tokens costs as much for 166 keys as for the base
// layer's 512 outputs; the score GEMM ran at about 0.85 of the base GEMM's rate. Here the
// keys are packed once, when the layer is made, into panels of 32 keys laid out as the
// kernel reads them, and the token rows are read where they lie. On the development
// machine the base GEMM is OpenBLAS's AVX2 kernel, so with 512-bit registers this kernel
// also runs faster per multiply-add than the base layer does (docs/performance.md).
#include <cstdint>
#include <vector>

namespace gaggle::route::detail {

// True where PackedKeys runs: AVX-512 on this CPU.
bool packed_keys_supported();

class PackedKeys {
 public:
  // keys [n, d] row-major, copied into panels. Only where packed_keys_supported().
  PackedKeys(const float* keys, std::int64_t n, std::int64_t d);

  // raw[t * ld + e] = u[t] · key[e] for t < rows, e < n (u [rows, d] row-major; ld >= n:
  // the columns from n on are not written). Single-threaded: the caller splits the tokens.
  void scores(const float* u, std::int64_t rows, float* raw, std::int64_t ld) const;

  std::int64_t keys() const { return n_; }
  std::int64_t width() const { return d_; }

 private:
  std::int64_t n_ = 0, d_ = 0;
  std::vector<float> panels_;  // [ceil(n / 32)][d][32]: key e0 + c at [p][j][c], zero past n
};

}  // namespace gaggle::route::detail
