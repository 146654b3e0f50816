#pragma once
// Matmul FLOPs (multiply-adds x 2) of a T5 pass, counted from the config, for the
// benchmarks' roofline ratios: what an ideal kernel at the measured GEMM rate would take.
// Element-wise work (norms, softmax, activations) is not counted: it is small and not a
// matmul. B examples, S encoder tokens and T decoder tokens each.
#include "model/t5_config.h"

namespace gaggle::bench {

struct T5PassFlops {
  double projections = 0;  // activation x frozen weight: q, k, v, o, feed-forward, LM head
  double attention = 0;    // activation x activation: scores and weighted sums
  double lora = 0;         // the LoRA paths, rank r on every linear (0 without)
  double total() const { return projections + attention + lora; }
};

inline T5PassFlops t5_pass_flops(const model::T5Config& c, double B, double S, double T, double rank = 0) {
  const double d = c.d_model, inner = c.inner_dim(), ff = c.d_ff, V = c.vocab_size;
  const double wi = c.gated ? 2.0 : 1.0;  // wi, or wi_0 and wi_1
  T5PassFlops f;
  // Per token: the projections' multiply-adds, and the LoRA paths' r (d_in + d_out).
  const double attn_proj = 4 * d * inner, ffn = wi * d * ff + ff * d;
  const double attn_lora = rank * 4 * (d + inner), ffn_lora = rank * (wi * (d + ff) + (ff + d));
  const double enc = B * S * (attn_proj + ffn), enc_lora = B * S * (attn_lora + ffn_lora);
  // Decoder: self-attention and feed-forward on T; cross-attention q, o on T and k, v on S.
  const double dec = B * T * (attn_proj + ffn + 2 * d * inner) + B * S * 2 * d * inner;
  const double dec_lora = B * T * (attn_lora + ffn_lora + rank * 2 * (d + inner)) + B * S * rank * 2 * (d + inner);
  f.projections = 2 * (c.num_layers * enc + c.num_decoder_layers * dec + B * T * d * V);
  f.attention = 2 * (c.num_layers * B * 2 * S * S * inner +
                     c.num_decoder_layers * B * 2 * (T * T + T * S) * inner);
  f.lora = 2 * (c.num_layers * enc_lora + c.num_decoder_layers * dec_lora);
  return f;
}

// One LoRA training step with the base frozen: the forward, then the backward's input
// gradients (one matmul per projection, two per attention product: both operands are
// activations) and the LoRA factors' input and weight gradients. Slightly more than the
// real count: nothing below the first LoRA needs an input gradient.
// gate_only: train-gate's step, where A and B are frozen too (no weight gradients for
// them; the gates' own gradients are a dot product per token, not counted).
inline double t5_lora_step_flops(const model::T5Config& c, double B, double S, double T, double rank,
                                 bool gate_only = false) {
  const T5PassFlops f = t5_pass_flops(c, B, S, T, rank);
  return f.total() + f.projections + 2 * f.attention + (gate_only ? 1 : 2) * f.lora;
}

}  // namespace gaggle::bench
