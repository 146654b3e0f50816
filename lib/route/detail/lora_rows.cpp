#include "route/detail/lora_rows.h"

#include "route/detail/intrinsics.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "route/detail/cpu_features.h"

namespace gaggle::route::detail {
namespace {

// Tokens handled together: each load of a factor element feeds this many of them. Six
// keeps 12 accumulators, 2 factor registers and the token's value in the 16 AVX2
// registers; against four, the update on one thread went from about 0.52 to about 0.65
// of the base GEMM's rate (`gaggle-bench kernels`, medians of four alternated runs).
constexpr int kTile = 6;

// Eight factor elements as float32: loaded as they are, or bfloat16 widened (its bits are
// the upper half of the float's).
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const std::uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// The four sums of a0..a3's lanes.
__attribute__((target("avx2,fma"))) inline __m128 lane_sums(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// The sum of a's eight lanes.
__attribute__((target("avx2,fma"))) inline float lane_sum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// h[t][j] = w[t] · (A u_t)[j] for T tokens, two rows of A at a time: each A load feeds T
// fused multiply-adds, and the T token rows stay in L1 while A streams from L2.
template <int T, typename F>
__attribute__((target("avx2,fma"))) void down(const LoraRowsTarget& g, const F* a, const float* const* x,
                                              const float* w, float* h) {
  for (std::int64_t j = 0; j < g.r; j += 2) {
    const F* a0 = a + j * g.d_in;
    const F* a1 = a0 + g.d_in;
    __m256 acc[T][2];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (std::int64_t k = 0; k < g.d_in; k += 8) {
      const __m256 w0 = load8(a0 + k), w1 = load8(a1 + k);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        __m256 v = _mm256_loadu_ps(x[t] + k);
        // Keeps v in a register: GCC otherwise folds the load into both multiply-adds,
        // and ten loads per eight multiply-adds ran at 55 GFLOP/s instead of 82.
        asm("" : "+x"(v));
        acc[t][0] = _mm256_fmadd_ps(v, w0, acc[t][0]);
        acc[t][1] = _mm256_fmadd_ps(v, w1, acc[t][1]);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      h[t * g.r + j] = w[t] * lane_sum(acc[t][0]);
      h[t * g.r + j + 1] = w[t] * lane_sum(acc[t][1]);
    }
  }
}

// Where token t's row starts from (base on its first update) and where it goes.
template <int T>
void rows_of(const LoraRowsTarget& g, const std::int64_t* token, const float** start, float** dest) {
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    dest[t] = g.out + token[t] * g.d_out;
    start[t] = g.started[token[t]] ? dest[t] : g.base ? g.base + token[t] * g.d_out : nullptr;  // null: zero
  }
}

// out[t] = start[t] + B h_t with B as stored ([d_out, r]): four outputs at a time, each
// a dot product over r. For the few rows where transposing B does not pay. R: r when
// known at compile time, 0 for any multiple of 8.
template <int T, int R, typename F>
__attribute__((target("avx2,fma"))) void up_dot(const LoraRowsTarget& g, const F* b, const std::int64_t* token,
                                                const float* h) {
  const std::int64_t r = R ? R : g.r;
  const float* start[T];
  float* dest[T];
  rows_of<T>(g, token, start, dest);
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const float* ht = h + t * r;
    for (std::int64_t c = 0; c < g.d_out; c += 4) {
      const F* b0 = b + c * r;
      __m256 acc[4];
      #pragma GCC unroll 8
      for (int q = 0; q < 4; ++q) acc[q] = _mm256_setzero_ps();
      for (std::int64_t j = 0; j < r; j += 8) {
        const __m256 hv = _mm256_loadu_ps(ht + j);
        #pragma GCC unroll 8
        for (int q = 0; q < 4; ++q) acc[q] = _mm256_fmadd_ps(load8(b0 + q * r + j), hv, acc[q]);
      }
      const __m128 sum = lane_sums(acc[0], acc[1], acc[2], acc[3]);
      _mm_storeu_ps(dest[t] + c, start[t] ? _mm_add_ps(_mm_loadu_ps(start[t] + c), sum) : sum);
    }
  }
}

// out[t] = start[t] + B h_t from bt = Bᵀ ([r, d_out]): sixteen outputs at a time, each
// bt load feeding T fused multiply-adds with h broadcast; no horizontal sums.
template <int T>
__attribute__((target("avx2,fma"))) void up_transposed(const LoraRowsTarget& g, const float* bt,
                                                       const std::int64_t* token, const float* h) {
  const float* start[T];
  float* dest[T];
  rows_of<T>(g, token, start, dest);
  for (std::int64_t c = 0; c < g.d_out; c += 16) {
    __m256 acc[T][2];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      acc[t][0] = start[t] ? _mm256_loadu_ps(start[t] + c) : _mm256_setzero_ps();
      acc[t][1] = start[t] && g.d_out - c >= 16 ? _mm256_loadu_ps(start[t] + c + 8) : _mm256_setzero_ps();
    }
    if (g.d_out - c >= 16) {
      for (std::int64_t j = 0; j < g.r; ++j) {
        const __m256 b0 = _mm256_loadu_ps(bt + j * g.d_out + c), b1 = _mm256_loadu_ps(bt + j * g.d_out + c + 8);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256 hj = _mm256_broadcast_ss(h + t * g.r + j);
          acc[t][0] = _mm256_fmadd_ps(b0, hj, acc[t][0]);
          acc[t][1] = _mm256_fmadd_ps(b1, hj, acc[t][1]);
        }
      }
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        _mm256_storeu_ps(dest[t] + c, acc[t][0]);
        _mm256_storeu_ps(dest[t] + c + 8, acc[t][1]);
      }
    } else {  // the last eight of a d_out that is 8 mod 16
      for (std::int64_t j = 0; j < g.r; ++j) {
        const __m256 b0 = _mm256_loadu_ps(bt + j * g.d_out + c);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
          acc[t][0] = _mm256_fmadd_ps(b0, _mm256_broadcast_ss(h + t * g.r + j), acc[t][0]);
      }
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) _mm256_storeu_ps(dest[t] + c, acc[t][0]);
    }
  }
}

// The same two halves with 512-bit registers, where the CPU has AVX-512 (twice the
// multiply-adds per instruction; d_in and d_out multiples of 16).
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const std::uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

template <int T, typename F>
__attribute__((target("avx512f"))) void down512(const LoraRowsTarget& g, const F* a, const float* const* x,
                                                const float* w, float* h) {
  for (std::int64_t j = 0; j < g.r; j += 2) {
    const F* a0 = a + j * g.d_in;
    const F* a1 = a0 + g.d_in;
    __m512 acc[T][2];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < g.d_in; k += 16) {
      const __m512 w0 = load16(a0 + k), w1 = load16(a1 + k);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        __m512 v = _mm512_loadu_ps(x[t] + k);
        asm("" : "+v"(v));  // one load feeding both multiply-adds (see down)
        acc[t][0] = _mm512_fmadd_ps(v, w0, acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(v, w1, acc[t][1]);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      h[t * g.r + j] = w[t] * _mm512_reduce_add_ps(acc[t][0]);
      h[t * g.r + j + 1] = w[t] * _mm512_reduce_add_ps(acc[t][1]);
    }
  }
}

template <int T>
__attribute__((target("avx512f"))) void up_transposed512(const LoraRowsTarget& g, const float* bt,
                                                         const std::int64_t* token, const float* h) {
  const float* start[T];
  float* dest[T];
  rows_of<T>(g, token, start, dest);
  for (std::int64_t c = 0; c < g.d_out; c += 32) {
    const bool two = g.d_out - c >= 32;
    __m512 acc[T][2];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      acc[t][0] = start[t] ? _mm512_loadu_ps(start[t] + c) : _mm512_setzero_ps();
      acc[t][1] = start[t] && two ? _mm512_loadu_ps(start[t] + c + 16) : _mm512_setzero_ps();
    }
    if (two) {
      for (std::int64_t j = 0; j < g.r; ++j) {
        const __m512 b0 = _mm512_loadu_ps(bt + j * g.d_out + c), b1 = _mm512_loadu_ps(bt + j * g.d_out + c + 16);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m512 hj = _mm512_set1_ps(h[t * g.r + j]);
          acc[t][0] = _mm512_fmadd_ps(b0, hj, acc[t][0]);
          acc[t][1] = _mm512_fmadd_ps(b1, hj, acc[t][1]);
        }
      }
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        _mm512_storeu_ps(dest[t] + c, acc[t][0]);
        _mm512_storeu_ps(dest[t] + c + 16, acc[t][1]);
      }
    } else {  // the last sixteen of a d_out that is 16 mod 32
      for (std::int64_t j = 0; j < g.r; ++j) {
        const __m512 b0 = _mm512_loadu_ps(bt + j * g.d_out + c);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t][0] = _mm512_fmadd_ps(b0, _mm512_set1_ps(h[t * g.r + j]), acc[t][0]);
      }
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) _mm512_storeu_ps(dest[t] + c, acc[t][0]);
    }
  }
}

std::atomic<bool> avx2_only{false};  // set_lora_rows_width

bool use_avx512(const LoraRowsTarget& g) {
  return !avx2_only.load(std::memory_order_relaxed) && lora_rows_avx512(g.d_in, g.d_out);
}

// Asks for the rows the next tile will read (its tokens' inputs, and the rows its update
// starts from) while this tile computes: the tokens are scattered, so the hardware
// prefetcher cannot guess them, and a cold 2 KiB row otherwise stalls the first loads.
void prefetch_rows(const LoraRowsTarget& g, const std::int64_t* token, std::int64_t count) {
  constexpr std::int64_t kLine = 64 / sizeof(float);
  for (std::int64_t t = 0; t < count; ++t) {
    const float* x = g.u + token[t] * g.d_in;
    for (std::int64_t c = 0; c < g.d_in; c += kLine) __builtin_prefetch(x + c, 0, 3);
    const float* dest = g.out + token[t] * g.d_out;
    if (g.started[token[t]]) {
      for (std::int64_t c = 0; c < g.d_out; c += kLine) __builtin_prefetch(dest + c, 1, 3);
    } else {
      for (std::int64_t c = 0; c < g.d_out; c += kLine) {
        if (g.base) __builtin_prefetch(g.base + token[t] * g.d_out + c, 0, 3);
        __builtin_prefetch(dest + c, 1, 3);
      }
    }
  }
}

template <int T, typename F>
void tile(const LoraRowsTarget& g, const F* a, const F* b, const float* bt, const std::int64_t* token,
          const float* weight, float* h) {
  const float* x[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) x[t] = g.u + token[t] * g.d_in;
  const bool wide = use_avx512(g);
  if (wide)
    down512<T>(g, a, x, weight, h);
  else
    down<T>(g, a, x, weight, h);
  if (bt && wide)
    up_transposed512<T>(g, bt, token, h);
  else if (bt)
    up_transposed<T>(g, bt, token, h);
  else if (g.r == 16)
    up_dot<T, 16>(g, b, token, h);
  else
    up_dot<T, 0>(g, b, token, h);
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) g.started[token[t]] = 1;
}

}  // namespace

bool lora_rows_avx512(std::int64_t d_in, std::int64_t d_out) {
  return cpu_has_avx512f() && d_in % 16 == 0 && d_out % 16 == 0;
}

void set_lora_rows_width(LoraRowsWidth width) { avx2_only.store(width == LoraRowsWidth::avx2); }

bool lora_rows_supported(std::int64_t r, std::int64_t d_in, std::int64_t d_out) {
  return r > 0 && r % 8 == 0 && r <= 256 && d_in > 0 && d_in % 8 == 0 && d_out > 0 && d_out % 8 == 0 &&
         cpu_has_avx2_fma();
}

namespace {

// In 8 × 8 blocks of AVX registers.
template <typename F>
__attribute__((target("avx2,fma"))) void transpose_b(const F* b, std::int64_t d_out, std::int64_t r, float* bt) {
  for (std::int64_t c = 0; c < d_out; c += 8)
    for (std::int64_t j = 0; j < r; j += 8) {
      __m256 v[8], t[8];
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) v[i] = load8(b + (c + i) * r + j);
      #pragma GCC unroll 8
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
      }
      #pragma GCC unroll 8
      for (int i = 0; i < 8; i += 4) {
        v[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        v[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        v[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        v[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      #pragma GCC unroll 8
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(bt + (j + i) * d_out + c, _mm256_permute2f128_ps(v[i], v[i + 4], 0x20));
        _mm256_storeu_ps(bt + (j + i + 4) * d_out + c, _mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
      }
    }
}

template <typename F>
void add_rows(const LoraRowsTarget& target, const F* a, const F* b, const std::int64_t* token, const float* weight,
              std::int64_t rows) {
  alignas(32) float h[kTile * 256];  // A u for one tile; r <= 256 (lora_rows_supported)
  const float* bt = target.bt;
  if (!bt && rows >= kLoraTransposeRows) {
    // Per thread, kept across calls: no allocation in the hot loop.
    thread_local std::vector<float> transposed;
    if (transposed.size() < static_cast<std::size_t>(target.r * target.d_out))
      transposed.resize(target.r * target.d_out);
    transpose_b(b, target.d_out, target.r, transposed.data());
    bt = transposed.data();
  }
  std::int64_t i = 0;
  for (; i + kTile <= rows; i += kTile) {
    prefetch_rows(target, token + i + kTile, std::min<std::int64_t>(kTile, rows - i - kTile));
    tile<kTile>(target, a, b, bt, token + i, weight + i, h);
  }
  switch (rows - i) {
    case 5: tile<5>(target, a, b, bt, token + i, weight + i, h); break;
    case 4: tile<4>(target, a, b, bt, token + i, weight + i, h); break;
    case 3: tile<3>(target, a, b, bt, token + i, weight + i, h); break;
    case 2: tile<2>(target, a, b, bt, token + i, weight + i, h); break;
    case 1: tile<1>(target, a, b, bt, token + i, weight + i, h); break;
    default: break;
  }
}

}  // namespace

void transpose_lora_b(const float* b, std::int64_t d_out, std::int64_t r, float* bt) { transpose_b(b, d_out, r, bt); }
void transpose_lora_b(const std::uint16_t* b, std::int64_t d_out, std::int64_t r, float* bt) {
  transpose_b(b, d_out, r, bt);
}

void transpose_target_b(const LoraRowsTarget& target, float* bt) {
  if (target.b16)
    transpose_b(target.b16, target.d_out, target.r, bt);
  else
    transpose_b(target.b, target.d_out, target.r, bt);
}

void add_lora_rows(const LoraRowsTarget& target, const std::int64_t* token, const float* weight, std::int64_t rows) {
  if (target.a16)
    add_rows(target, target.a16, target.b16, token, weight, rows);
  else
    add_rows(target, target.a, target.b, token, weight, rows);
}

}  // namespace gaggle::route::detail
