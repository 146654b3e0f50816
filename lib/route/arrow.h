#pragma once
// Arrow routing keys (design.md §2 baselines): per expert, the top right singular vector
// of its update B A (unit norm). A token's score is |u · key| / 10 / sqrt(d_in), no LN
// (RoutedLinear with ScoreKind::abs_dot).
//
// Computed from the factors without forming the d_out × d_in matrix: Aᵀ = Q R (thin QR,
// Q d_in × r), so B A = (B Rᵀ) Qᵀ; the top right singular vector v of the small
// d_out × r matrix B Rᵀ gives key = Q v. The sign is arbitrary (the score takes |·|); it
// is fixed so that the largest-magnitude component is positive, for reproducible files.
#include <ATen/core/Tensor.h>

namespace gaggle::route {

inline constexpr double kArrowTemperature = 10.0;

// A [N, r, d_in], B [N, d_out, r] -> keys [N, d_in] float32 (computed in float64).
// Throws Error{invalid} on inconsistent shapes.
at::Tensor arrow_keys(const at::Tensor& A, const at::Tensor& B);

}  // namespace gaggle::route
