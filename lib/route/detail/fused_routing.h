#pragma once
// The routing decision of the routed layer in as few passes over the tokens as possible
// (issue #15, item 1). Torch-free: plain row-major float arrays, so that it compiles in
// a second and is tested against the LibTorch formulas on its own.
//
// PHATGOOSE scores a token u against a key k as LN(u) · k / sqrt(d), where
// LN(u) = (u - mean(u)) · rstd(u) and rstd = 1 / sqrt(var(u) + eps). Distributing the
// dot product gives
//
//   LN(u) · k = (u · k - mean(u) · Σ_j k_j) · rstd(u)
//
// exactly, for any key. So the layer never writes a normalised copy of the tokens: it
// takes the raw dot products (one GEMM), two numbers per token and one per key, and
// turns the raw products into scores while it selects the top k. The softmax over all N
// experts is never written either: top-k of the scores equals top-k of the
// probabilities (softmax is monotonic), and the reference's weights
// p_e / (Σ_topk p + eps) need only the softmax's normaliser Z = Σ_all exp(s - max),
// summed in the same pass.
#include <cstdint>

namespace gaggle::route::detail {

// How raw dot products u · key become scores.
struct ScoreTransform {
  // true: PHATGOOSE / average activation, (raw - mean(u) · key_sum) · rstd(u) · scale;
  // false: Arrow, |raw| · scale.
  bool layer_norm = true;
  double scale = 1.0;               // 1 / sqrt(d_in), or 1 / (temperature · sqrt(d_in))
  const float* key_sum = nullptr;   // [n] Σ_j key[e][j]; layer_norm only
};

// raw[e] = (raw[e] - mean · key_sum[e]) · factor for e < n, in place: a row of raw dot
// products u · key made into the scores LN(u) · key · scale (factor = rstd(u) · scale),
// vectorised where the CPU has AVX2. The ivf index's centroids and clusters.
void layer_norm_scores_in_place(float* raw, std::int64_t n, float mean, float factor, const float* key_sum);

// Mean and 1 / sqrt(var + eps) of each of `rows` rows of width d (population variance,
// as LayerNorm), two passes over each row (the second centred, as LayerNorm computes it).
void row_moments(const float* u, std::int64_t rows, std::int64_t d, double eps, float* mean, float* rstd);

// Σ_j key[e][j] for each of n keys of width d, in double precision.
void key_sums(const float* keys, std::int64_t n, std::int64_t d, float* out);

// out[j] = (row[j] - shift) · factor for j < d: a token row made into its query, LN(u) / sqrt(d)
// with shift = mean(u) and factor = rstd(u) / sqrt(d) (the ivf router gathers its rows so).
void normalise_row(const float* row, std::int64_t d, float shift, float factor, float* out);

// For each of `rows` rows of raw dot products raw[t, 0..n): the scores s = transform(raw),
// the k largest (descending; ties to the lower index; a row with no usable value — NaN —
// takes the first experts, so the NaN reaches the output), and their weights
// p_e / (Σ_topk p + renorm_eps) with p = softmax(s) over all n. mean/rstd: the rows'
// row_moments (layer_norm only). With keep_scores the scores overwrite raw.
// index and weight are [rows, k].
void select_top_k(float* raw, std::int64_t rows, std::int64_t n, const float* mean, const float* rstd,
                  const ScoreTransform& transform, int k, double renorm_eps, bool keep_scores, std::int64_t* index,
                  float* weight);

// The same selection over scores that are already final (the ivf index's candidates):
// row t holds width[t] >= k scores at scores + t · stride; index is the position within
// the row. index and weight are [rows, k].
void select_top_k_of_scores(const float* scores, std::int64_t stride, const std::int64_t* width, std::int64_t rows,
                            int k, double renorm_eps, std::int64_t* index, float* weight);

// Σ_i exp(x[i] - shift) for x[i] <= shift, vectorised, relative error below 1e-6; NaN
// when any x[i] or the shift is NaN or infinite. Exposed for its test.
double sum_exp_shifted(const float* x, std::int64_t n, float shift);

}  // namespace gaggle::route::detail
