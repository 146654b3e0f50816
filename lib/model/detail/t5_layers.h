#pragma once
// The T5 building blocks behind T5ModelImpl (lib/model internal). Each module is
// registered under its Hugging Face name, so parameter keys equal safetensors keys.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/detail/hooked_linear.h"
#include "model/linear_hook.h"
#include "model/t5.h"
#include "model/t5_config.h"

namespace gaggle::model::detail {

// y = W u (no bias), then the attached adapter, if any, sees (u, W u): hooked_linear.h.
using T5LinearImpl = HookedLinearImpl;

class T5EmbeddingImpl : public torch::nn::Module {
 public:
  T5EmbeddingImpl(std::int64_t num, std::int64_t dim);
  at::Tensor forward(const at::Tensor& ids);
  at::Tensor weight;  // [num, dim]
};

// HF T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight, in float32, no mean, no bias.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(std::int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;  // [dim]
  double eps;
};

class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional);
  // [1, H, q_len, k_len] position bias for query positions offset..offset+q_len-1.
  at::Tensor compute_bias(std::int64_t q_len, std::int64_t k_len, std::int64_t offset) const;
  // Self-attention when kv_source is undefined, cross-attention otherwise. `bias` is
  // added to the raw (unscaled) scores. past_key/past_value: the cache slots (may be
  // null); for self-attention they are extended, for cross-attention filled once.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& kv_source, const at::Tensor& bias,
                     at::Tensor* past_key, at::Tensor* past_value);

  std::shared_ptr<T5LinearImpl> q, k, v, o;
  std::shared_ptr<T5EmbeddingImpl> relative_attention_bias;  // null unless block 0 self-attention
  std::int64_t num_heads, d_kv, num_buckets, max_distance;
  bool bidirectional;

 private:
  at::Tensor split_heads(const at::Tensor& x) const;
};

class T5DenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseImpl(const T5Config& c);
  at::Tensor forward(const at::Tensor& x);
  std::shared_ptr<T5LinearImpl> wi, wi_0, wi_1, wo;  // wi (relu) or wi_0 + wi_1 (gated)
  bool gated;
};

// One residual sub-layer: layer_norm, then SelfAttention / EncDecAttention / DenseReluDense.
class T5SubLayerImpl : public torch::nn::Module {
 public:
  enum Kind { kSelfAttention, kCrossAttention, kFeedForward };
  T5SubLayerImpl(const T5Config& c, Kind kind, bool has_relative_bias, bool bidirectional);
  Kind kind;
  std::shared_ptr<T5AttentionImpl> attention;  // kSelfAttention / kCrossAttention
  std::shared_ptr<T5DenseImpl> dense;          // kFeedForward
  std::shared_ptr<T5LayerNormImpl> layer_norm;
};

class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& c, bool is_decoder, bool first);
  std::vector<std::shared_ptr<T5SubLayerImpl>> layers;  // registered as layer.0, layer.1, (layer.2)
};

class T5StackImpl : public torch::nn::Module {
 public:
  T5StackImpl(const T5Config& c, bool is_decoder);
  // Encoder: embeds [B,S,d], mask [B,S] -> hidden [B,S,d].
  at::Tensor forward_encoder(const at::Tensor& embeds, const at::Tensor& mask);
  // Decoder: embeds [B,T,d] of positions cache->length.. (0.. without cache).
  at::Tensor forward_decoder(const at::Tensor& embeds, const at::Tensor& encoder_hidden,
                             const at::Tensor& encoder_mask, KvCache* cache);

  std::vector<std::shared_ptr<T5BlockImpl>> blocks;
  std::shared_ptr<T5LayerNormImpl> final_layer_norm;
  bool is_decoder;
};

// (1 - mask) * finfo(float32).min as [B,1,1,S] float.
at::Tensor extended_mask(const at::Tensor& mask);

// The HF bucket of each relative position (memory - context).
at::Tensor relative_position_bucket(const at::Tensor& relative_position, bool bidirectional, std::int64_t num_buckets,
                                    std::int64_t max_distance);

}  // namespace gaggle::model::detail
