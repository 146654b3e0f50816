#pragma once
// PHATGOOSE routing keys (design.md §2): each expert's trained gate vector, normalised
// once — LayerNorm without affine, eps 1e-5, per vector — so that at inference a token's
// score is LN(u) · key / sqrt(d_in) (RoutedLinear with ScoreKind::layer_norm_dot).
#include <ATen/core/Tensor.h>

namespace gaggle::route {

inline constexpr double kRouteLayerNormEps = 1e-5;

// gates [N, d_in] -> keys [N, d_in] (float32, computed in float64). Throws Error{invalid}
// for a tensor that is not 2-D.
at::Tensor phatgoose_keys(const at::Tensor& gates);

// LN(x) over the last dimension, no affine: (x - mean) / sqrt(var + eps), population variance.
at::Tensor layer_norm_no_affine(const at::Tensor& x, double eps = kRouteLayerNormEps);

// The scores of tokens u [..., d_in] against prepared keys [N, d_in] (PHATGOOSE, average
// activation, SMEAR): LN(u) · keyᵀ / sqrt(d_in) -> [..., N] in u's dtype. One LayerNorm
// (the 1/sqrt(d_in) folded into its weight) and one GEMM.
at::Tensor layer_norm_scores(const at::Tensor& u, const at::Tensor& keys, double eps = kRouteLayerNormEps);

}  // namespace gaggle::route
