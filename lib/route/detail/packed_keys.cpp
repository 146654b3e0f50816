#include "route/detail/packed_keys.h"

#include "route/detail/intrinsics.h"

#include <algorithm>

#include "route/detail/cpu_features.h"

namespace gaggle::route::detail {
namespace {

constexpr std::int64_t kBlockTokens = 128;  // tokens whose rows stay in L2 while every panel passes

// A tile is the T × (lanes · V) products of token rows u[0..T) with one packed panel
// (V = 1: its first register's keys only, for a last panel that fits one register),
// written to raw[t][col + c] for the first `width` keys of the panel. Each kernel keeps T · V
// accumulators, V key registers and a broadcast token element in its register file.

// 512-bit: panels of 32 keys, tiles of 8 tokens (16 accumulators of 32 registers).
template <int T, int V>
struct Tile512 {
  static constexpr std::int64_t kPanel = 32, kTokens = 8;
  __attribute__((target("avx512f"))) static void run(const float* const* u, std::int64_t d, const float* panel,
                                                     float* const* raw, std::int64_t col, std::int64_t width) {
    const float* row[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) row[t] = u[t];
    __m512 acc[T][V];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      #pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[t][v] = _mm512_setzero_ps();
    for (std::int64_t j = 0; j < d; ++j) {
      __m512 k[V];
      #pragma GCC unroll 2
      for (int v = 0; v < V; ++v) k[v] = _mm512_loadu_ps(panel + j * kPanel + 16 * v);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512 x = _mm512_set1_ps(row[t][j]);
        #pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[t][v] = _mm512_fmadd_ps(x, k[v], acc[t][v]);
      }
    }
    #pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const std::int64_t left = width - 16 * v;  // keys of this register to write
      if (left <= 0) break;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(raw[t] + col + 16 * v, mask, acc[t][v]);
    }
  }
};

// 256-bit: panels of 16 keys, tiles of 6 tokens (12 accumulators, 2 keys and the
// broadcast in 16 registers: the shape of the usual AVX2 sgemm micro-kernel).
template <int T, int V>
struct Tile256 {
  static constexpr std::int64_t kPanel = 16, kTokens = 6;
  __attribute__((target("avx2,fma"))) static void run(const float* const* u, std::int64_t d, const float* panel,
                                                      float* const* raw, std::int64_t col, std::int64_t width) {
    const float* row[T];
    #pragma GCC unroll 6
    for (int t = 0; t < T; ++t) row[t] = u[t];
    __m256 acc[T][V];
    #pragma GCC unroll 6
    for (int t = 0; t < T; ++t)
      #pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[t][v] = _mm256_setzero_ps();
    for (std::int64_t j = 0; j < d; ++j) {
      __m256 k[V];
      #pragma GCC unroll 2
      for (int v = 0; v < V; ++v) k[v] = _mm256_loadu_ps(panel + j * kPanel + 8 * v);
      #pragma GCC unroll 6
      for (int t = 0; t < T; ++t) {
        const __m256 x = _mm256_broadcast_ss(row[t] + j);
        #pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[t][v] = _mm256_fmadd_ps(x, k[v], acc[t][v]);
      }
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    #pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const std::int64_t left = width - 8 * v;  // keys of this register to write
      if (left <= 0) break;
      if (left >= 8) {
        #pragma GCC unroll 6
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(raw[t] + col + 8 * v, acc[t][v]);
      } else {
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), lane);
        #pragma GCC unroll 6
        for (int t = 0; t < T; ++t) _mm256_maskstore_ps(raw[t] + col + 8 * v, mask, acc[t][v]);
      }
    }
  }
};

// The last rows < Tile::kTokens, one tile of exactly that many.
template <template <int, int> class Tile, int V, int T>
void remainder_tile(std::int64_t rows, const float* const* u, std::int64_t d, const float* panel, float* const* raw,
                    std::int64_t col, std::int64_t width) {
  if constexpr (T > 0) {
    if (rows == T)
      Tile<T, V>::run(u, d, panel, raw, col, width);
    else
      remainder_tile<Tile, V, T - 1>(rows, u, d, panel, raw, col, width);
  }
}

template <template <int, int> class Tile, int V>
void tokens_against_panel(const float* const* u, std::int64_t rows, std::int64_t d, const float* panel,
                          float* const* raw, std::int64_t col, std::int64_t width) {
  constexpr int kTokens = static_cast<int>(Tile<1, 1>::kTokens);
  std::int64_t t = 0;
  for (; t + kTokens <= rows; t += kTokens) Tile<kTokens, V>::run(u + t, d, panel, raw + t, col, width);
  remainder_tile<Tile, V, kTokens - 1>(rows - t, u + t, d, panel, raw + t, col, width);
}

template <template <int, int> class Tile>
void score_rows(const float* panels, std::int64_t n, std::int64_t d, const float* const* u, std::int64_t rows,
                float* const* raw) {
  constexpr std::int64_t kPanel = Tile<1, 1>::kPanel;
  // Panels outside, tokens inside: a panel (64 KiB at d = 512 and 32 keys) stays in L2
  // while a block of token rows passes it, and each token row is read from L2 once per
  // panel.
  for (std::int64_t lo = 0; lo < rows; lo += kBlockTokens) {
    const std::int64_t count = std::min(kBlockTokens, rows - lo);
    for (std::int64_t e0 = 0; e0 < n; e0 += kPanel) {
      const std::int64_t width = std::min(kPanel, n - e0);
      const float* panel = panels + e0 * d;
      if (width > kPanel / 2)
        tokens_against_panel<Tile, 2>(u + lo, count, d, panel, raw + lo, e0, width);
      else  // half the multiply-adds for a last panel that fits one register
        tokens_against_panel<Tile, 1>(u + lo, count, d, panel, raw + lo, e0, width);
    }
  }
}

}  // namespace

bool score_kernel_runs(ScoreKernel kernel) {
  return kernel == ScoreKernel::avx512 ? cpu_has_avx512f() : cpu_has_avx2_fma();
}

bool packed_keys_supported() { return score_kernel_runs(ScoreKernel::avx2) || score_kernel_runs(ScoreKernel::avx512); }

PackedKeys::PackedKeys(const float* keys, std::int64_t n, std::int64_t d)
    : PackedKeys(keys, n, d, cpu_has_avx512f() ? ScoreKernel::avx512 : ScoreKernel::avx2) {}

PackedKeys::PackedKeys(const float* keys, std::int64_t n, std::int64_t d, ScoreKernel kernel)
    : n_(n), d_(d), kernel_(kernel) {
  const std::int64_t panel = kernel == ScoreKernel::avx512 ? Tile512<1, 1>::kPanel : Tile256<1, 1>::kPanel;
  const std::int64_t panels = (n + panel - 1) / panel;
  panels_.assign(static_cast<std::size_t>(panels * d * panel), 0.0f);
  for (std::int64_t e = 0; e < n; ++e)
    for (std::int64_t j = 0; j < d; ++j) panels_[(e / panel * d + j) * panel + e % panel] = keys[e * d + j];
}

void PackedKeys::scores(const float* u, std::int64_t rows, float* raw, std::int64_t ld) const {
  // The rows as pointers, one block at a time (the kernel reads rows wherever they lie).
  const float* in[kBlockTokens];
  float* out[kBlockTokens];
  for (std::int64_t lo = 0; lo < rows; lo += kBlockTokens) {
    const std::int64_t count = std::min(kBlockTokens, rows - lo);
    for (std::int64_t i = 0; i < count; ++i) {
      in[i] = u + (lo + i) * d_;
      out[i] = raw + (lo + i) * ld;
    }
    scores(in, count, out);
  }
}

void PackedKeys::scores(const float* const* rows, std::int64_t count, float* const* raw) const {
  if (kernel_ == ScoreKernel::avx512)
    score_rows<Tile512>(panels_.data(), n_, d_, rows, count, raw);
  else
    score_rows<Tile256>(panels_.data(), n_, d_, rows, count, raw);
}

}  // namespace gaggle::route::detail
