#include "model/detail/llama_layers.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cmath>

namespace gaggle::model::detail {

LlamaEmbeddingImpl::LlamaEmbeddingImpl(std::int64_t num, std::int64_t dim) {
  weight = register_parameter("weight", at::empty({num, dim}, at::kFloat));
}

at::Tensor LlamaEmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

LlamaRMSNormImpl::LlamaRMSNormImpl(std::int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}, at::kFloat));
}

at::Tensor LlamaRMSNormImpl::forward(const at::Tensor& x) {
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (h * at::rsqrt(variance + eps));
}

std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& positions, const LlamaConfig& c) {
  auto opts = at::TensorOptions().dtype(at::kFloat).device(positions.device());
  // As HF, in float32: inv_freq = 1 / theta^(arange(0, hd, 2) / hd); t = position / factor.
  at::Tensor exponents = at::arange(0, c.head_dim, 2, opts) / static_cast<double>(c.head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(c.rope_theta, exponents);
  at::Tensor t = positions.to(at::kFloat);
  if (c.rope_linear_factor != 1.0) t = t / c.rope_linear_factor;
  at::Tensor freqs = t.unsqueeze(-1) * inv_freq;   // [B, S, hd/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, S, hd]
  return {emb.cos(), emb.sin()};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  q_proj = register_module("q_proj", std::make_shared<LlamaLinearImpl>(c.hidden_size, c.q_dim()));
  k_proj = register_module("k_proj", std::make_shared<LlamaLinearImpl>(c.hidden_size, c.kv_dim()));
  v_proj = register_module("v_proj", std::make_shared<LlamaLinearImpl>(c.hidden_size, c.kv_dim()));
  o_proj = register_module("o_proj", std::make_shared<LlamaLinearImpl>(c.q_dim(), c.hidden_size));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       const at::Tensor& bias, at::Tensor* past_key, at::Tensor* past_value) {
  const std::int64_t batch = x.size(0), len = x.size(1);
  auto heads = [&](const at::Tensor& y, std::int64_t n) { return y.view({batch, len, n, head_dim}).transpose(1, 2); };
  at::Tensor query = apply_rotary(heads(q_proj->forward(x), num_heads), cos, sin);
  at::Tensor key = apply_rotary(heads(k_proj->forward(x), num_kv_heads), cos, sin);
  at::Tensor value = heads(v_proj->forward(x), num_kv_heads);
  if (past_key) {  // the cache holds rotated keys: a key's rotation depends on its own position only
    if (past_key->defined()) {
      key = at::cat({*past_key, key}, 2);
      value = at::cat({*past_value, value}, 2);
    }
    *past_key = key;
    *past_value = value;
  }
  // GQA: each key/value head serves num_heads / num_kv_heads consecutive query heads.
  if (num_kv_heads != num_heads) {
    const std::int64_t groups = num_heads / num_kv_heads;
    key = key.repeat_interleave(groups, 1);
    value = value.repeat_interleave(groups, 1);
  }
  at::Tensor scores = at::matmul(query, key.transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim)) + bias;
  at::Tensor weights = at::softmax(scores.to(at::kFloat), -1);
  at::Tensor out = at::matmul(weights, value).transpose(1, 2).reshape({batch, len, num_heads * head_dim});
  return o_proj->forward(out);
}

LlamaMLPImpl::LlamaMLPImpl(const LlamaConfig& c) {
  gate_proj = register_module("gate_proj", std::make_shared<LlamaLinearImpl>(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", std::make_shared<LlamaLinearImpl>(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", std::make_shared<LlamaLinearImpl>(c.intermediate_size, c.hidden_size));
}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) {
  return down_proj->forward(at::silu(gate_proj->forward(x)) * up_proj->forward(x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& c) {
  self_attn = register_module("self_attn", std::make_shared<LlamaAttentionImpl>(c));
  mlp = register_module("mlp", std::make_shared<LlamaMLPImpl>(c));
  input_layernorm = register_module("input_layernorm", std::make_shared<LlamaRMSNormImpl>(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", std::make_shared<LlamaRMSNormImpl>(c.hidden_size, c.rms_norm_eps));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                                          const at::Tensor& bias, at::Tensor* past_key, at::Tensor* past_value) {
  at::Tensor x = h + self_attn->forward(input_layernorm->forward(h), cos, sin, bias, past_key, past_value);
  return x + mlp->forward(post_attention_layernorm->forward(x));
}

LlamaBackboneImpl::LlamaBackboneImpl(const LlamaConfig& c) {
  embed_tokens = register_module("embed_tokens", std::make_shared<LlamaEmbeddingImpl>(c.vocab_size, c.hidden_size));
  auto list = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(std::make_shared<LlamaDecoderLayerImpl>(c));
    list->push_back(layers.back());
  }
  norm = register_module("norm", std::make_shared<LlamaRMSNormImpl>(c.hidden_size, c.rms_norm_eps));
}

}  // namespace gaggle::model::detail
