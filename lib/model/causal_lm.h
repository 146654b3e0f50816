#pragma once
// Teacher forcing on a decoder-only (causal) LM (issue #14): an example is read as one
// row, prompt ++ target, right-padded; the logits at position t predict token t + 1, so
// target token j of row b is predicted at position prompt_length_b - 1 + j. Only those
// positions are scored: what the model predicts inside the prompt never enters the loss.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace gaggle::model {

// The rows of x [B, S, ...] that predict each target token: [B, L, ...], where
// prompt_lengths [B] (int64) and L is the longest target. Positions past a row's end are
// clamped into the row (their labels are -100). Differentiable in x.
at::Tensor target_rows(const at::Tensor& x, const at::Tensor& prompt_lengths, std::int64_t target_len);

// Per-token NLL [B, L] (float32, 0 where labels are -100) of labels [B, L] under the
// logits [B, L, V] of their predicting positions (target_rows of the logits).
at::Tensor target_token_nll(const at::Tensor& target_logits, const at::Tensor& labels);

}  // namespace gaggle::model
