#include "model/detail/t5_layers.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

namespace gaggle::model::detail {

T5EmbeddingImpl::T5EmbeddingImpl(std::int64_t num, std::int64_t dim) {
  weight = register_parameter("weight", at::empty({num, dim}, at::kFloat));
}

at::Tensor T5EmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

T5LayerNormImpl::T5LayerNormImpl(std::int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", at::ones({dim}, at::kFloat));
}

at::Tensor T5LayerNormImpl::forward(const at::Tensor& x) {
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (h * at::rsqrt(variance + eps));
}

at::Tensor extended_mask(const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kFloat).unsqueeze(1).unsqueeze(2);
  return (1.0 - m) * std::numeric_limits<float>::lowest();
}

at::Tensor relative_position_bucket(const at::Tensor& relative_position, bool bidirectional, std::int64_t num_buckets,
                                    std::int64_t max_distance) {
  at::Tensor rp = relative_position;
  at::Tensor buckets = at::zeros_like(rp);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + (rp > 0).to(at::kLong) * num_buckets;
    rp = rp.abs();
  } else {
    rp = -at::clamp_max(rp, 0);
  }
  const std::int64_t max_exact = num_buckets / 2;
  at::Tensor is_small = rp < max_exact;
  // Same float32 arithmetic as HF: log(rp / max_exact) / log(max_distance / max_exact) * (nb - max_exact).
  // rp is clamped to >= 1 only to keep log finite where the small branch is used anyway.
  at::Tensor large = at::log(rp.clamp_min(1).to(at::kFloat) / static_cast<double>(max_exact)) /
                     std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                     static_cast<double>(num_buckets - max_exact);
  at::Tensor if_large = (large.to(at::kLong) + max_exact).clamp_max(num_buckets - 1);
  return buckets + at::where(is_small, rp, if_large);
}

T5AttentionImpl::T5AttentionImpl(const T5Config& c, bool has_relative_bias, bool bidirectional_)
    : num_heads(c.num_heads),
      d_kv(c.d_kv),
      num_buckets(c.relative_attention_num_buckets),
      max_distance(c.relative_attention_max_distance),
      bidirectional(bidirectional_) {
  q = register_module("q", std::make_shared<T5LinearImpl>(c.d_model, c.inner_dim()));
  k = register_module("k", std::make_shared<T5LinearImpl>(c.d_model, c.inner_dim()));
  v = register_module("v", std::make_shared<T5LinearImpl>(c.d_model, c.inner_dim()));
  o = register_module("o", std::make_shared<T5LinearImpl>(c.inner_dim(), c.d_model));
  if (has_relative_bias)
    relative_attention_bias =
        register_module("relative_attention_bias", std::make_shared<T5EmbeddingImpl>(num_buckets, num_heads));
}

at::Tensor T5AttentionImpl::compute_bias(std::int64_t q_len, std::int64_t k_len, std::int64_t offset) const {
  auto opts = at::TensorOptions().dtype(at::kLong).device(relative_attention_bias->weight.device());
  at::Tensor context = at::arange(offset, offset + q_len, opts).unsqueeze(1);
  at::Tensor memory = at::arange(0, k_len, opts).unsqueeze(0);
  at::Tensor bucket = relative_position_bucket(memory - context, bidirectional, num_buckets, max_distance);
  return relative_attention_bias->forward(bucket).permute({2, 0, 1}).unsqueeze(0);  // [1,H,q,k]
}

at::Tensor T5AttentionImpl::split_heads(const at::Tensor& x) const {
  return x.view({x.size(0), -1, num_heads, d_kv}).transpose(1, 2);
}

at::Tensor T5AttentionImpl::forward(const at::Tensor& x, const at::Tensor& kv_source, const at::Tensor& bias,
                                    at::Tensor* past_key, at::Tensor* past_value) {
  const std::int64_t batch = x.size(0);
  at::Tensor query = split_heads(q->forward(x));
  at::Tensor key, value;
  if (kv_source.defined()) {  // cross-attention: keys/values depend on the encoder only
    if (past_key && past_key->defined()) {
      key = *past_key;
      value = *past_value;
    } else {
      key = split_heads(k->forward(kv_source));
      value = split_heads(v->forward(kv_source));
      if (past_key) {
        *past_key = key;
        *past_value = value;
      }
    }
  } else {
    key = split_heads(k->forward(x));
    value = split_heads(v->forward(x));
    if (past_key) {
      if (past_key->defined()) {
        key = at::cat({*past_key, key}, 2);
        value = at::cat({*past_value, value}, 2);
      }
      *past_key = key;
      *past_value = value;
    }
  }
  at::Tensor scores = at::matmul(query, key.transpose(3, 2));  // unscaled, as T5 does
  scores = scores + bias;
  at::Tensor weights = at::softmax(scores.to(at::kFloat), -1).type_as(scores);
  at::Tensor out = at::matmul(weights, value).transpose(1, 2).contiguous().view({batch, -1, num_heads * d_kv});
  return o->forward(out);
}

T5DenseImpl::T5DenseImpl(const T5Config& c) : gated(c.gated) {
  if (gated) {
    wi_0 = register_module("wi_0", std::make_shared<T5LinearImpl>(c.d_model, c.d_ff));
    wi_1 = register_module("wi_1", std::make_shared<T5LinearImpl>(c.d_model, c.d_ff));
  } else {
    wi = register_module("wi", std::make_shared<T5LinearImpl>(c.d_model, c.d_ff));
  }
  wo = register_module("wo", std::make_shared<T5LinearImpl>(c.d_ff, c.d_model));
}

at::Tensor T5DenseImpl::forward(const at::Tensor& x) {
  if (gated) return wo->forward(at::gelu(wi_0->forward(x), "tanh") * wi_1->forward(x));  // HF "gelu_new"
  return wo->forward(at::relu(wi->forward(x)));
}

T5SubLayerImpl::T5SubLayerImpl(const T5Config& c, Kind kind_, bool has_relative_bias, bool bidirectional) : kind(kind_) {
  if (kind == kSelfAttention)
    attention = register_module("SelfAttention", std::make_shared<T5AttentionImpl>(c, has_relative_bias, bidirectional));
  else if (kind == kCrossAttention)
    attention = register_module("EncDecAttention", std::make_shared<T5AttentionImpl>(c, false, false));
  else
    dense = register_module("DenseReluDense", std::make_shared<T5DenseImpl>(c));
  layer_norm = register_module("layer_norm", std::make_shared<T5LayerNormImpl>(c.d_model, c.layer_norm_epsilon));
}

T5BlockImpl::T5BlockImpl(const T5Config& c, bool is_decoder, bool first) {
  auto list = register_module("layer", torch::nn::ModuleList());
  layers.push_back(std::make_shared<T5SubLayerImpl>(c, T5SubLayerImpl::kSelfAttention, first, !is_decoder));
  if (is_decoder) layers.push_back(std::make_shared<T5SubLayerImpl>(c, T5SubLayerImpl::kCrossAttention, false, false));
  layers.push_back(std::make_shared<T5SubLayerImpl>(c, T5SubLayerImpl::kFeedForward, false, false));
  for (auto& l : layers) list->push_back(l);
}

T5StackImpl::T5StackImpl(const T5Config& c, bool is_decoder_) : is_decoder(is_decoder_) {
  auto list = register_module("block", torch::nn::ModuleList());
  const std::int64_t n = is_decoder ? c.num_decoder_layers : c.num_layers;
  for (std::int64_t i = 0; i < n; ++i) {
    blocks.push_back(std::make_shared<T5BlockImpl>(c, is_decoder, i == 0));
    list->push_back(blocks.back());
  }
  final_layer_norm = register_module("final_layer_norm", std::make_shared<T5LayerNormImpl>(c.d_model, c.layer_norm_epsilon));
}

at::Tensor T5StackImpl::forward_encoder(const at::Tensor& embeds, const at::Tensor& mask) {
  const std::int64_t len = embeds.size(1);
  auto& first = *blocks.front()->layers[0]->attention;
  at::Tensor bias = first.compute_bias(len, len, 0) + extended_mask(mask);  // [B,H,S,S], shared by every block
  at::Tensor h = embeds;
  for (auto& block : blocks) {
    auto& self = *block->layers[0];
    h = h + self.attention->forward(self.layer_norm->forward(h), {}, bias, nullptr, nullptr);
    auto& ff = *block->layers[1];
    h = h + ff.dense->forward(ff.layer_norm->forward(h));
  }
  return final_layer_norm->forward(h);
}

at::Tensor T5StackImpl::forward_decoder(const at::Tensor& embeds, const at::Tensor& encoder_hidden,
                                        const at::Tensor& encoder_mask, KvCache* cache) {
  const std::int64_t len = embeds.size(1);
  const std::int64_t offset = cache ? cache->length : 0;
  const std::size_t n = blocks.size();
  if (cache && cache->self_key.size() != n) {
    cache->self_key.assign(n, {});
    cache->self_value.assign(n, {});
    cache->cross_key.assign(n, {});
    cache->cross_value.assign(n, {});
  }
  auto& first = *blocks.front()->layers[0]->attention;
  // Causal: query offset+i sees keys 0..offset+i.
  auto opts = at::TensorOptions().dtype(at::kLong).device(embeds.device());
  at::Tensor qpos = at::arange(offset, offset + len, opts).unsqueeze(1);
  at::Tensor kpos = at::arange(0, offset + len, opts).unsqueeze(0);
  at::Tensor causal = (kpos <= qpos).to(at::kFloat).unsqueeze(0).unsqueeze(0);  // [1,1,T,Tk]
  at::Tensor self_bias =
      first.compute_bias(len, offset + len, offset) + (1.0 - causal) * std::numeric_limits<float>::lowest();
  at::Tensor cross_bias = extended_mask(encoder_mask);  // [B,1,1,S]
  at::Tensor h = embeds;
  for (std::size_t i = 0; i < n; ++i) {
    auto& self = *blocks[i]->layers[0];
    h = h + self.attention->forward(self.layer_norm->forward(h), {}, self_bias, cache ? &cache->self_key[i] : nullptr,
                                    cache ? &cache->self_value[i] : nullptr);
    auto& cross = *blocks[i]->layers[1];
    h = h + cross.attention->forward(cross.layer_norm->forward(h), encoder_hidden, cross_bias,
                                     cache ? &cache->cross_key[i] : nullptr, cache ? &cache->cross_value[i] : nullptr);
    auto& ff = *blocks[i]->layers[2];
    h = h + ff.dense->forward(ff.layer_norm->forward(h));
  }
  if (cache) cache->length = offset + len;
  return final_layer_norm->forward(h);
}

}  // namespace gaggle::model::detail
