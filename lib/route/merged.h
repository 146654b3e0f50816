#pragma once
// Merged experts (design.md §2 baselines) and a single fixed expert: one update applied to
// every token. Two forms (docs/fidelity.md §4: the paper's README names a merge of the
// products, its released code averages the factors):
//
//   products (router "merged"):          y = W u + (1/N) Σ_i B_i A_i u · lora_scale
//   factors  (router "merged-factors"):  y = W u + ((1/N) Σ_i B_i) ((1/N) Σ_i A_i) u · lora_scale
//
// The products form is kept exact (never the product of averaged factors). It is applied
// as one low-rank pair (A_cat [N·r, d_in], B_cat [d_out, N·r]) or, when that is cheaper
// (N·r·(d_in + d_out) > d_in·d_out), as the dense d_out × d_in matrix formed once at
// construction. The factors form is one rank-r pair. A single expert is the case N = 1,
// where both forms are the expert.
#include <ATen/core/Tensor.h>

#include "model/linear_hook.h"

namespace gaggle::route {

enum class MergeForm { products, factors };

class MergedLinear : public model::LinearAdapter {
 public:
  // A [N, r, d_in], B [N, d_out, r]; lora_scale 0 means 1/r. Throws Error{invalid}.
  MergedLinear(const at::Tensor& A, const at::Tensor& B, double lora_scale = 0, MergeForm form = MergeForm::products);

  // u [..., d_in], base_out [..., d_out] -> base_out + the merged update (a new tensor).
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override;
  // The update alone, [..., d_out].
  at::Tensor update(const at::Tensor& u) const;

  bool dense() const { return delta_.defined(); }

 private:
  std::int64_t d_in_ = 0, d_out_ = 0;
  at::Tensor a_cat_, b_cat_;  // low-rank form, b_cat_ pre-scaled by lora_scale / N
  at::Tensor delta_;          // dense form [d_out, d_in], scaled
};

}  // namespace gaggle::route
