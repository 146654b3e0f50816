#include "route/detail/fused_routing.h"

#include "route/detail/intrinsics.h"

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "route/detail/cpu_features.h"
#include "route/detail/topk.h"

namespace gaggle::route::detail {
namespace {

// exp(x) for x <= 0, Cephes' single-precision polynomial (about 1 ulp). Branch-free, so
// that loops over it vectorise. Below -87 it returns exp(-87) (~1.6e-38) instead of a
// denormal or 0, which leaves a sum of probabilities unchanged; NaN is clamped the same
// way (the caller sees NaN through the values it computes exactly).
inline float exp_nonpositive(float x) {
  x = x > -87.0f ? x : -87.0f;
  const float rounded = (x * 1.44269504088896341f + 0x1.8p23f) - 0x1.8p23f;  // round(x / ln 2)
  const float r = x - rounded * 0.693359375f + rounded * 2.12194440e-4f;     // x - n ln 2, in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const auto exponent = static_cast<std::int32_t>(rounded) + 127;  // >= 1: x >= -87
  return y * std::bit_cast<float>(exponent << 23);
}

// exp_nonpositive over eight lanes, summed over whole blocks of eight; `done` is set to
// the first index not summed. NaN or infinite inputs make the result NaN.
__attribute__((target("avx2,fma"))) double sum_exp_avx2(const float* x, std::int64_t n, float shift,
                                                       std::int64_t& done) {
  const __m256 shift8 = _mm256_set1_ps(shift), floor8 = _mm256_set1_ps(-87.0f);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), magic = _mm256_set1_ps(0x1.8p23f);
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 c0 = _mm256_set1_ps(1.9875691500e-4f), c1 = _mm256_set1_ps(1.3981999507e-3f),
               c2 = _mm256_set1_ps(8.3334519073e-3f), c3 = _mm256_set1_ps(4.1665795894e-2f),
               c4 = _mm256_set1_ps(1.6666665459e-1f), c5 = _mm256_set1_ps(5.0000001201e-1f),
               one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  __m256 total = zero, check = zero;
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), shift8);
    check = _mm256_add_ps(check, _mm256_mul_ps(v, zero));
    const __m256 c = _mm256_max_ps(v, floor8);  // NaN -> -87 (the check above carries it)
    const __m256 rounded = _mm256_sub_ps(_mm256_fmadd_ps(c, log2e, magic), magic);
    const __m256 r = _mm256_fnmadd_ps(rounded, ln2_lo, _mm256_fnmadd_ps(rounded, ln2_hi, c));
    __m256 p = _mm256_fmadd_ps(c0, r, c1);
    p = _mm256_fmadd_ps(p, r, c2);
    p = _mm256_fmadd_ps(p, r, c3);
    p = _mm256_fmadd_ps(p, r, c4);
    p = _mm256_fmadd_ps(p, r, c5);
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), one);
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(rounded), _mm256_set1_epi32(127)), 23);
    total = _mm256_fmadd_ps(y, _mm256_castsi256_ps(exponent), total);
  }
  done = i;
  alignas(32) float lanes[8], checks[8];
  _mm256_store_ps(lanes, total);
  _mm256_store_ps(checks, check);
  double sum = 0, nan = 0;
  for (int l = 0; l < 8; ++l) sum += lanes[l], nan += checks[l];
  return sum + nan;
}

// Row transforms, written as plain loops over contiguous floats and compiled with -O3 for
// AVX2 where the CPU has it (the build's -O2 leaves them scalar).
[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void layer_norm_transform(
    const float* __restrict raw, float* __restrict out, std::int64_t n, float mean, float factor,
    const float* __restrict key_sum) {
  for (std::int64_t e = 0; e < n; ++e) out[e] = (raw[e] - mean * key_sum[e]) * factor;
}

[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void abs_transform(const float* __restrict raw,
                                                                                    float* __restrict out,
                                                                                    std::int64_t n, float factor) {
  for (std::int64_t e = 0; e < n; ++e) out[e] = std::fabs(raw[e]) * factor;
}

}  // namespace

[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void layer_norm_scores_in_place(
    float* raw, std::int64_t n, float mean, float factor, const float* key_sum) {
  for (std::int64_t e = 0; e < n; ++e) raw[e] = (raw[e] - mean * key_sum[e]) * factor;
}

double sum_exp_shifted(const float* x, std::int64_t n, float shift) {
  // Z needs no more than a few digits: it enters the weights only through renorm_eps
  // (select_top_k), so float partial sums are enough.
  std::int64_t i = 0;
  double total = cpu_has_avx2_fma() ? sum_exp_avx2(x, n, shift, i) : 0.0;
  double check = 0;  // 0 · v stays 0 unless v is NaN or infinite
  for (; i < n; ++i) {
    const float v = x[i] - shift;
    total += exp_nonpositive(v);
    check += v * 0.0f;
  }
  return std::isnan(total) || std::isnan(check) ? std::numeric_limits<double>::quiet_NaN() : total;
}

[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void normalise_row(const float* __restrict row,
                                                                                   std::int64_t d, float shift,
                                                                                   float factor,
                                                                                   float* __restrict out) {
  for (std::int64_t j = 0; j < d; ++j) out[j] = (row[j] - shift) * factor;
}

[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void row_moments(const float* u, std::int64_t rows,
                                                                                 std::int64_t d, double eps,
                                                                                 float* mean, float* rstd) {
  constexpr int kLanes = 16;  // independent partial sums: the loops vectorise without reassociation
  for (std::int64_t t = 0; t < rows; ++t) {
    const float* row = u + t * d;
    float lane[kLanes] = {};
    std::int64_t j = 0;
    for (; j + kLanes <= d; j += kLanes)
      for (int l = 0; l < kLanes; ++l) lane[l] += row[j + l];
    double sum = 0;
    for (int l = 0; l < kLanes; ++l) sum += lane[l];
    for (; j < d; ++j) sum += row[j];
    const auto mu = static_cast<float>(sum / static_cast<double>(d));
    float sq_lane[kLanes] = {};
    j = 0;
    for (; j + kLanes <= d; j += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const float c = row[j + l] - mu;
        sq_lane[l] += c * c;
      }
    double sq = 0;
    for (int l = 0; l < kLanes; ++l) sq += sq_lane[l];
    for (; j < d; ++j) sq += static_cast<double>(row[j] - mu) * (row[j] - mu);
    mean[t] = mu;
    rstd[t] = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(d) + eps));
  }
}

void key_sums(const float* keys, std::int64_t n, std::int64_t d, float* out) {
  for (std::int64_t e = 0; e < n; ++e) {
    double sum = 0;
    for (std::int64_t j = 0; j < d; ++j) sum += keys[e * d + j];
    out[e] = static_cast<float>(sum);
  }
}

namespace {

// Top-k of one row of final scores and the reference's weights (see select_top_k).
// best_v/best_i: scratch of k entries.
void pick_row(const float* s, std::int64_t n, int k, double renorm_eps, float* best_v, std::int64_t* best_i,
              double* top, std::int64_t* index, float* weight) {
  topk_row(s, n, k, best_v, best_i);
  fill_unfilled_slots(s, k, best_v, best_i);  // a NaN row: the first experts, NaN weights
  // p_e = exp(s_e - max) / Z, so p_e / (Σ_topk p + eps) = e_e / (Σ_topk e + eps · Z):
  // the normaliser enters only through eps, and the top values are exact.
  const float max = best_v[0];
  const double z = sum_exp_shifted(s, n, max);
  double top_sum = 0;
  for (int slot = 0; slot < k; ++slot) {
    top[slot] = std::exp(static_cast<double>(best_v[slot]) - static_cast<double>(max));
    top_sum += top[slot];
  }
  const double denom = top_sum + renorm_eps * z;
  for (int slot = 0; slot < k; ++slot) {
    index[slot] = best_i[slot];
    weight[slot] = static_cast<float>(top[slot] / denom);
  }
}

}  // namespace

void select_top_k(float* raw, std::int64_t rows, std::int64_t n, const float* mean, const float* rstd,
                  const ScoreTransform& transform, int k, double renorm_eps, bool keep_scores, std::int64_t* index,
                  float* weight) {
  std::vector<float> scratch(keep_scores ? 0 : n);
  std::vector<float> best_v(k);
  std::vector<std::int64_t> best_i(k);
  std::vector<double> top(k);
  for (std::int64_t t = 0; t < rows; ++t) {
    float* row = raw + t * n;
    float* s = keep_scores ? row : scratch.data();
    if (transform.layer_norm)
      layer_norm_transform(row, s, n, mean[t], static_cast<float>(rstd[t] * transform.scale), transform.key_sum);
    else
      abs_transform(row, s, n, static_cast<float>(transform.scale));
    pick_row(s, n, k, renorm_eps, best_v.data(), best_i.data(), top.data(), index + t * k, weight + t * k);
  }
}

void select_top_k_of_scores(const float* scores, std::int64_t stride, const std::int64_t* width, std::int64_t rows,
                            int k, double renorm_eps, std::int64_t* index, float* weight) {
  std::vector<float> best_v(k);
  std::vector<std::int64_t> best_i(k);
  std::vector<double> top(k);
  for (std::int64_t t = 0; t < rows; ++t)
    pick_row(scores + t * stride, width[t], k, renorm_eps, best_v.data(), best_i.data(), top.data(), index + t * k,
             weight + t * k);
}

}  // namespace gaggle::route::detail
