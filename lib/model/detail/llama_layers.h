#pragma once
// The Llama building blocks behind LlamaModelImpl (lib/model internal), numerically
// Hugging Face's LlamaForCausalLM (transformers 4.33; golden/README.md conventions).
// Each module is registered under its Hugging Face name, so parameter keys equal
// safetensors keys ("model.layers.0.self_attn.q_proj.weight").
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "model/detail/hooked_linear.h"
#include "model/linear_hook.h"
#include "model/llama_config.h"

namespace gaggle::model::detail {

// y = W u (no bias), then the attached adapter, if any, sees (u, W u): the hook point
// T5's linears are too (hooked_linear.h).
using LlamaLinearImpl = HookedLinearImpl;

class LlamaEmbeddingImpl : public torch::nn::Module {
 public:
  LlamaEmbeddingImpl(std::int64_t num, std::int64_t dim);
  at::Tensor forward(const at::Tensor& ids);
  at::Tensor weight;  // [num, dim]
};

// HF LlamaRMSNorm: weight * x * rsqrt(mean(x^2) + eps), in float32, no mean, no bias.
class LlamaRMSNormImpl : public torch::nn::Module {
 public:
  LlamaRMSNormImpl(std::int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;  // [dim]
  double eps;
};

// Rotary embeddings in HF's rotate-half layout: dims j and j + head_dim/2 of each head
// rotate together by position * theta^(-2j/head_dim), positions divided by the linear
// scaling factor first. positions [B, S] (any integer dtype) -> cos, sin [B, 1, S, head_dim].
std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& positions, const LlamaConfig& config);
// x [B, H, S, head_dim] rotated: x * cos + rotate_half(x) * sin.
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const LlamaConfig& c);
  // x [B, S, d]; bias [B, 1, S, past + S] added to the scaled scores; past_key/value: the
  // cache slots of this layer ([B, KV, past, head_dim], rotated), extended; may be null.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                     at::Tensor* past_key, at::Tensor* past_value);
  std::shared_ptr<LlamaLinearImpl> q_proj, k_proj, v_proj, o_proj;
  std::int64_t num_heads, num_kv_heads, head_dim;
};

// down(silu(gate(x)) * up(x)).
class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const LlamaConfig& c);
  at::Tensor forward(const at::Tensor& x);
  std::shared_ptr<LlamaLinearImpl> gate_proj, up_proj, down_proj;
};

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const LlamaConfig& c);
  // Pre-norm residual blocks: h + attn(norm(h)), then h + mlp(norm(h)).
  at::Tensor forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                     at::Tensor* past_key, at::Tensor* past_value);
  std::shared_ptr<LlamaAttentionImpl> self_attn;
  std::shared_ptr<LlamaMLPImpl> mlp;
  std::shared_ptr<LlamaRMSNormImpl> input_layernorm, post_attention_layernorm;
};

// HF's LlamaModel (the "model." prefix): embed_tokens, layers.N, norm.
class LlamaBackboneImpl : public torch::nn::Module {
 public:
  explicit LlamaBackboneImpl(const LlamaConfig& c);
  std::shared_ptr<LlamaEmbeddingImpl> embed_tokens;
  std::vector<std::shared_ptr<LlamaDecoderLayerImpl>> layers;
  std::shared_ptr<LlamaRMSNormImpl> norm;
};

}  // namespace gaggle::model::detail
