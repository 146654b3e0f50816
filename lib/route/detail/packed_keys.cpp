#include "route/detail/packed_keys.h"

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*, a false alarm); the
// state at the header's lines is what counts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>

#include "route/detail/cpu_features.h"

namespace gaggle::route::detail {
namespace {

constexpr std::int64_t kPanel = 32;        // keys per panel: two 512-bit registers
constexpr std::int64_t kTileTokens = 8;    // tokens per tile: 16 accumulators
constexpr std::int64_t kBlockTokens = 128;  // tokens whose rows stay in L2 while every panel passes

// The T × 16V products of tokens u[0..T) with one panel (d × 32, packed; V = 1: its first
// 16 keys only, for a last panel of at most 16), written to raw[t * ld + c] for the first
// `width` keys of the panel.
template <int T, int V>
__attribute__((target("avx512f"))) void tile(const float* u, std::int64_t d, const float* panel, float* raw,
                                             std::int64_t ld, std::int64_t width) {
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
      const __m512 x = _mm512_set1_ps(u[t * d + j]);
      #pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[t][v] = _mm512_fmadd_ps(x, k[v], acc[t][v]);
    }
  }
  #pragma GCC unroll 2
  for (int v = 0; v < V; ++v) {
    const std::int64_t left = width - 16 * v;  // keys of this register to write
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    if (left <= 0) break;
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(raw + t * ld + 16 * v, mask, acc[t][v]);
  }
}

template <int V>
void tokens_against_panel(const float* u, std::int64_t rows, std::int64_t d, const float* panel, float* raw,
                          std::int64_t ld, std::int64_t width) {
  std::int64_t t = 0;
  for (; t + kTileTokens <= rows; t += kTileTokens)
    tile<kTileTokens, V>(u + t * d, d, panel, raw + t * ld, ld, width);
  switch (rows - t) {
    case 7: tile<7, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 6: tile<6, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 5: tile<5, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 4: tile<4, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 3: tile<3, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 2: tile<2, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    case 1: tile<1, V>(u + t * d, d, panel, raw + t * ld, ld, width); break;
    default: break;
  }
}

}  // namespace

bool packed_keys_supported() { return cpu_has_avx512f(); }

PackedKeys::PackedKeys(const float* keys, std::int64_t n, std::int64_t d) : n_(n), d_(d) {
  const std::int64_t panels = (n + kPanel - 1) / kPanel;
  panels_.assign(static_cast<std::size_t>(panels * d * kPanel), 0.0f);
  for (std::int64_t e = 0; e < n; ++e)
    for (std::int64_t j = 0; j < d; ++j) panels_[(e / kPanel * d + j) * kPanel + e % kPanel] = keys[e * d + j];
}

void PackedKeys::scores(const float* u, std::int64_t rows, float* raw, std::int64_t ld) const {
  // Panels outside, tokens inside: a panel (64 KiB at d = 512) stays in L2 while a block
  // of token rows passes it, and each token row is read from L2 once per panel.
  for (std::int64_t lo = 0; lo < rows; lo += kBlockTokens) {
    const std::int64_t count = std::min(kBlockTokens, rows - lo);
    for (std::int64_t e0 = 0; e0 < n_; e0 += kPanel) {
      const std::int64_t width = std::min(kPanel, n_ - e0);
      const float* panel = panels_.data() + e0 * d_;
      if (width > 16)
        tokens_against_panel<2>(u + lo * d_, count, d_, panel, raw + lo * ld + e0, ld, width);
      else  // half the multiply-adds for a last panel of at most 16 keys
        tokens_against_panel<1>(u + lo * d_, count, d_, panel, raw + lo * ld + e0, ld, width);
    }
  }
}

}  // namespace gaggle::route::detail
