#pragma once
// SMEAR-style soft merge (design.md §2, "Optional"; issue #7 item 1): per example, one
// expert merged from all experts by the mean routing distribution.
//
// Per module, a token u's routing distribution is the softmax over all N experts of the
// PHATGOOSE scores, s_i = LN(u) · LN(gate_i) / sqrt(d_in) (LN without affine, eps 1e-5;
// the same keys a phatgoose assembly stores, route/phatgoose.h). Its merged expert is
//
//   y = W u + Σ_i p̄_i B_i A_i u · lora_scale
//
// where p̄ is the mean distribution over the example's real (non-padded) tokens:
//   - modules that read encoder tokens (every encoder module, and the decoder's
//     cross-attention k and v): the mean over the example's real encoder tokens, the
//     same p̄ for every row of the example;
//   - the other decoder modules stay causal, so that teacher-forced scoring equals
//     step-by-step cached generation: token t uses the running mean over the example's
//     real decoder tokens 0..t. The running sums are kept across cached steps and
//     start again when the model begins a new sequence (TokenContext offset 0).
// Which rows are real, and which kind of module this is, comes from the model before
// each batch (model::TokenContext); applying the layer without one is an error.
//
// Cost: inherently a mixture of all experts, N·r·(d_in + d_out) multiply-adds per token
// on top of the N·d_in of the scores. It is computed low-rank — u A_catᵀ [T, N·r], scaled
// per expert block by p̄, then B_catᵀ — and never as a d_out × d_in matrix per example
// (that costs N·r·d_in·d_out per example, cheaper only for sequences longer than about
// d_in·d_out/(d_in + d_out) tokens, and not at all for cached generation). Experts whose
// mean weight is exactly 0 in the whole batch are skipped.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/linear_hook.h"

namespace gaggle::route {

struct SmearOptions {
  double lora_scale = 0;  // alpha / r; 0 means 1 / r
  double layer_norm_eps = 1e-5;
};

class SmearLinear : public model::LinearAdapter {
 public:
  // A [N, r, d_in], B [N, d_out, r] (shared, never written), keys [N, d_in] already
  // normalised (phatgoose_keys). Throws Error{invalid} on inconsistent shapes.
  SmearLinear(at::Tensor A, at::Tensor B, at::Tensor keys, SmearOptions options = {});

  // u [B, L, d_in], base_out [B, L, d_out] (batch first), after set_tokens told this
  // layer the rows' mask. Throws Error{invalid} without a matching context.
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override;
  void set_tokens(const model::TokenContext& context) override;

  // The merge weights p̄ for u [B, L, d_in] under the current context: [B, 1, N]
  // (encoder rows) or [B, L, N] (causal decoder rows; advances the running sums).
  at::Tensor merge_weights(const at::Tensor& u);

  std::int64_t experts() const { return n_; }

 private:
  at::Tensor A_, B_, keys_;
  SmearOptions options_;
  std::int64_t n_ = 0, r_ = 0, d_in_ = 0, d_out_ = 0;
  double scale_ = 1;
  at::Tensor a_cat_, b_cat_;  // [N·r, d_in], [d_out, N·r] · lora_scale
  // The current context.
  bool has_context_ = false;
  at::Tensor mask_;
  bool causal_ = false;
  std::int64_t offset_ = 0;
  // Causal running sums over the decoder tokens so far: Σ m·p [B, N], Σ m [B, 1].
  at::Tensor sum_, count_;
  std::int64_t seen_ = 0;  // positions consumed
};

}  // namespace gaggle::route
