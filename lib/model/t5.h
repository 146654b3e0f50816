#pragma once
// The T5 encoder-decoder in LibTorch, numerically exact to Hugging Face's
// T5ForConditionalGeneration (issue #3, items 1–3, 5; golden/README.md conventions):
// RMS norm in float32 without mean or bias, unscaled attention, relative position
// buckets (bidirectional in the encoder, unidirectional in the decoder, one bias table
// per stack in block 0 shared by every block), ReLU or gated GELU (tanh approximation),
// additive masks (1 - mask) * finfo(float32).min, and the d_model^-0.5 rescale before
// the LM head when embeddings are tied. No dropout (inference and LoRA training alike).
//
// Submodules are registered under Hugging Face's names, so named_parameters() keys are
// exactly the safetensors keys ("shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
// "lm_head.weight" only when untied). Parameters are float32; base weights are frozen
// (requires_grad false) after load_t5; make_t5 leaves them trainable (pretraining).
//
// Shapes: B batch, S encoder length, T decoder length, L label length, V vocab,
// d = d_model. Ids are int64 (kLong); masks are 1 for real tokens, 0 for padding
// (any integer or float dtype). Inputs are moved to the model's device.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "model/base_model.h"
#include "model/linear_hook.h"
#include "model/load_options.h"
#include "model/t5_config.h"

namespace gaggle::model {

namespace detail {
class T5EmbeddingImpl;
class HookedLinearImpl;
class T5StackImpl;
}  // namespace detail

// Key/value cache for incremental decoding: one entry per decoder block. Owned by the
// caller; decode() fills it on the first call and extends it on each later call.
struct KvCache {
  std::vector<at::Tensor> self_key, self_value;    // [B, H, T_so_far, d_kv]
  std::vector<at::Tensor> cross_key, cross_value;  // [B, H, S, d_kv], computed once
  std::int64_t length = 0;                         // decoder positions already cached
  void clear() { *this = KvCache{}; }
};

class T5ModelImpl : public torch::nn::Module, public BaseModel {
 public:
  explicit T5ModelImpl(const T5Config& config);

  const T5Config& config() const { return config_; }
  std::int64_t num_parameters() const;  // distinct parameters (tied counted once)
  at::Device device() const override;

  // ---- BaseModel (base_model.h; t5_base.cpp): the prompt is the encoder input, the
  // target the decoder's labels ----
  Architecture architecture() const override { return Architecture::t5; }
  torch::nn::Module& module() override { return *this; }
  std::int64_t hidden_size() const override { return config_.d_model; }
  std::int64_t vocab_size() const override { return config_.vocab_size; }
  TokenFormat token_format(std::int64_t tokenizer_eos_id) const override { return t5_token_format(tokenizer_eos_id); }
  at::Tensor target_nll(const TokenRows& prompts, const TokenRows& targets) override;
  std::vector<std::vector<double>> rank_classification_nll(const TokenRows& prompts, const std::vector<TokenRows>& choices,
                                                           const RankOptions& options) override;
  TokenRows generate(const TokenRows& prompts, std::int64_t max_new_tokens) override;
  at::Tensor prompt_embeddings(const TokenRows& prompts) override;  // mean-pooled encoder output
  std::vector<at::Tensor> row_masks(const TokenRows& prompts, const TokenRows& targets) const override;
  std::size_t row_mask_of(const std::string& linear_name) const override;

  // Encoder: input_ids [B,S], attention_mask [B,S] -> last hidden state [B,S,d] (after
  // the final RMS norm). Padded positions are computed too (pad queries see real keys).
  at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask);

  // Decoder + LM head: decoder_input_ids [B,T] (causal, no padding mask), encoder_hidden
  // [B,S,d] and the encoder's attention_mask [B,S] -> logits [B,T,V].
  // With a cache: decoder_input_ids are the T new positions following cache->length; the
  // cache's self-attention keys/values are extended and cross keys/values reused.
  at::Tensor decode(const at::Tensor& decoder_input_ids, const at::Tensor& encoder_hidden,
                    const at::Tensor& attention_mask, KvCache* cache = nullptr);

  // encode + decode: logits [B,T,V].
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const at::Tensor& decoder_input_ids);

  // Teacher-forced per-token negative log-likelihood. labels [B,L] right-padded with
  // -100; the decoder input is HF's shift_right(labels). Returns [B,L] float32, 0 where
  // the label is -100. Differentiable (training sums/means it).
  at::Tensor token_nll(const at::Tensor& input_ids, const at::Tensor& attention_mask, const at::Tensor& labels);
  // Same with a precomputed encoder output (rank classification reuses one encoding).
  at::Tensor token_nll_from_encoded(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                                    const at::Tensor& labels);

  // Greedy decoding with the KV cache, under InferenceMode. Returns [B, 1+n] int64 on
  // the CPU, starting with decoder_start_token_id. stop_at_eos=false: exactly
  // n = max_new_tokens argmax steps. stop_at_eos=true: HF's stopping — after a row emits
  // eos it is filled with pad, and decoding ends once every row has finished (n may be
  // smaller than max_new_tokens).
  at::Tensor greedy(const at::Tensor& input_ids, const at::Tensor& attention_mask, std::int64_t max_new_tokens,
                    bool stop_at_eos);
  // The same without a cache (full recompute each step): the reference for tests.
  at::Tensor greedy_uncached(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                             std::int64_t max_new_tokens, bool stop_at_eos);

  // ---- the hook point (linear_hook.h) ----
  // Every linear's HF module path (t5_linear_names(config())); lm_head excluded.
  std::vector<std::string> linear_names() const override;
  // Attaches `adapter` to the linear at `linear_name` (replacing any previous one);
  // nullptr detaches. The adapter sees u [..., d_in] (for T5: [B, S or T, d_in], the
  // batch dimension preserved) and W u, and returns the layer output. The model shares
  // ownership. Unknown name: Error{not_found} naming it.
  void set_adapter(const std::string& linear_name, std::shared_ptr<LinearAdapter> adapter) override;
  std::shared_ptr<LinearAdapter> adapter(const std::string& linear_name) const override;  // nullptr if none
  void clear_adapters() override;
  // The frozen weight [d_out, d_in] of a linear (shares storage with the parameter).
  at::Tensor linear_weight(const std::string& linear_name) const override;

  // The input embedding table [V, d] ("shared.weight") and the LM head weight [V, d]
  // (the same tensor when tied).
  at::Tensor shared_weight() const;
  at::Tensor lm_head_weight() const;

 private:
  at::Tensor lm_logits(const at::Tensor& decoder_hidden);
  detail::HookedLinearImpl& linear_at(const std::string& linear_name) const;

  T5Config config_;
  std::shared_ptr<detail::T5EmbeddingImpl> shared_;
  std::shared_ptr<detail::T5StackImpl> encoder_;
  std::shared_ptr<detail::T5StackImpl> decoder_;
  std::shared_ptr<detail::HookedLinearImpl> lm_head_;  // nullptr when tied
  std::map<std::string, std::shared_ptr<detail::HookedLinearImpl>> linears_;
};
TORCH_MODULE(T5Model);

// A randomly initialised model (normal weights as HF's _init_weights with
// initializer_factor 1, RMS-norm weights 1), seeded by torch::manual_seed. For tests,
// benchmarks and tiny-base pretraining. Parameters are trainable.
T5Model make_t5(const T5Config& config);

// Loads a Hugging Face checkpoint directory: config.json plus model.safetensors or a
// sharded model.safetensors.index.json; tensors stored as F32, F16 or BF16 are
// converted to float32. Strict: a missing tensor, an unexpected tensor or a wrong shape
// is an Error{invalid} naming the file and the tensor. Known aliases are consumed
// explicitly: encoder/decoder.embed_tokens.weight (and lm_head.weight when tied) must
// equal shared.weight; decoder.block.0.layer.1.EncDecAttention.relative_attention_bias
// (old checkpoints) is ignored. Parameters are frozen unless options.trainable.
// Throws Error{not_found} (no config.json / no weights), Error{unsupported} (dtype).
T5Model load_t5(const std::filesystem::path& base_dir, const LoadOptions& options = {});

// Writes config.json and model.safetensors (HF layout and names; tied => only
// shared.weight) into `dir` (created if needed), each file atomically. Other files in
// `dir` (spiece.model, ...) are left alone. `dtype` F32 (exact), BF16 or F16 (half the
// bytes, each weight rounded to nearest even; config.json's torch_dtype says which).
void save_t5(const T5Model& model, const std::filesystem::path& dir, io::DType dtype = io::DType::F32);

// HF's _shift_right: [decoder_start, labels[:, :-1]] with -100 replaced by pad.
at::Tensor shift_right(const at::Tensor& labels, std::int64_t decoder_start_token_id, std::int64_t pad_token_id);

}  // namespace gaggle::model
