#pragma once
// The Llama decoder-only model in LibTorch, numerically Hugging Face's LlamaForCausalLM
// (issue #14; golden/README.md "Llama" conventions): RMS norm in float32, rotary
// embeddings in the rotate-half layout (rope_theta, linear rope_scaling), grouped-query
// attention scaled by 1/sqrt(head_dim), SwiGLU MLP, tied or untied LM head, additive
// masks at finfo(float32).min. No dropout.
//
// The adapter API is T5ModelImpl's, name for name (linear_names, set_adapter, adapter,
// clear_adapters, linear_weight), over the same hook (linear_hook.h), so LoRA experts
// and routers attach to either architecture by HF module path
// ("model.layers.0.self_attn.q_proj"). Adapters are told each batch as a decoder-phase
// TokenContext: causal rows, the attention mask of the new positions, the cache offset.
//
// Submodules carry Hugging Face's names, so named_parameters() keys are the safetensors
// keys ("model.embed_tokens.weight", "lm_head.weight" only when untied).
//
// Shapes: B batch, S positions, V vocab, d = hidden_size. Ids are int64; masks are 1 for
// real tokens, 0 for padding. Inputs are moved to the model's device.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/base_model.h"
#include "model/linear_hook.h"
#include "model/llama_config.h"
#include "model/load_options.h"

namespace gaggle::model {

namespace detail {
class LlamaBackboneImpl;
class HookedLinearImpl;
}  // namespace detail

// Key/value cache for incremental decoding, one slot per layer. Owned by the caller;
// forward() fills it on the first call and extends it on each later call.
struct LlamaKvCache {
  std::vector<at::Tensor> key, value;  // [B, num_kv_heads, length, head_dim], keys already rotated
  at::Tensor mask;                     // [B, length]: which cached positions are real tokens
  std::int64_t length = 0;             // positions already cached
  void clear() { *this = LlamaKvCache{}; }
};

class LlamaModelImpl : public torch::nn::Module, public BaseModel {
 public:
  explicit LlamaModelImpl(const LlamaConfig& config);

  const LlamaConfig& config() const { return config_; }
  std::int64_t num_parameters() const;  // distinct parameters (tied counted once)
  at::Device device() const override;

  // ---- BaseModel (base_model.h; llama_base.cpp): a causal LM reads prompt ++ target
  // (right-padded) and scores the target positions only ----
  Architecture architecture() const override { return Architecture::llama; }
  torch::nn::Module& module() override { return *this; }
  std::int64_t hidden_size() const override { return config_.hidden_size; }
  std::int64_t vocab_size() const override { return config_.vocab_size; }
  TokenFormat token_format(std::int64_t) const override { return llama_token_format(config_); }
  at::Tensor target_nll(const TokenRows& prompts, const TokenRows& targets) override;
  // Summed NLL of each choice's tokens after the prompt: -log p(choice | prompt).
  std::vector<std::vector<double>> rank_classification_nll(const TokenRows& prompts, const std::vector<TokenRows>& choices,
                                                           const RankOptions& options) override;
  // Greedy, all prompts in one batch (left-padded, one KV cache); equals greedy() per prompt.
  TokenRows generate(const TokenRows& prompts, std::int64_t max_new_tokens) override;
  at::Tensor prompt_embeddings(const TokenRows& prompts) override;  // final hidden state, mean over the prompt
  std::vector<at::Tensor> row_masks(const TokenRows& prompts, const TokenRows& targets) const override;
  std::size_t row_mask_of(const std::string& linear_name) const override;

  // The final-norm hidden state [B, S, d] (forward() before the LM head); arguments as forward().
  at::Tensor hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask = {}, const at::Tensor& position_ids = {},
                    LlamaKvCache* cache = nullptr, const at::Tensor& prompt_mask = {});

  // Causal LM logits [B, S, V] for input_ids [B, S].
  // attention_mask [B, S]: which new positions are real (undefined: all).
  // position_ids [B, S]: the rotary positions (undefined: HF's default,
  // cache length + 0..S-1; generate() passes cumsum(mask) - 1 for left padding).
  // With a cache: input_ids are the S positions after cache->length; the cache's keys,
  // values and mask are extended. Query i sees cached and new keys up to its own index.
  // prompt_mask [B, S] (a new sequence only, no cache offset): which positions are the
  // prompt; adapters are then offered TokenContext::prompt_embedding, the base model's
  // (no adapter) final hidden state mean-pooled over them (retrieval routing).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                     const at::Tensor& position_ids = {}, LlamaKvCache* cache = nullptr,
                     const at::Tensor& prompt_mask = {});

  // Greedy continuation of one unpadded prompt (ids [S] or [1, S]) under InferenceMode,
  // with the KV cache. Returns the new ids [n] (int64, CPU). stop_at_eos: stop after
  // emitting eos (which is kept, HF's stopping); otherwise exactly max_new_tokens.
  at::Tensor greedy(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos);
  // The same recomputing the whole sequence each step: the reference for tests.
  at::Tensor greedy_uncached(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos);

  // ---- the hook point (linear_hook.h), as T5ModelImpl ----
  // Every linear's HF module path (llama_linear_names(config())); lm_head excluded.
  std::vector<std::string> linear_names() const override;
  // Attaches `adapter` to the linear at `linear_name` (replacing any previous one);
  // nullptr detaches. The adapter sees u [B, S, d_in] and W u. Unknown name:
  // Error{not_found} naming it.
  void set_adapter(const std::string& linear_name, std::shared_ptr<LinearAdapter> adapter) override;
  std::shared_ptr<LinearAdapter> adapter(const std::string& linear_name) const override;  // nullptr if none
  void clear_adapters() override;
  // The frozen weight [d_out, d_in] of a linear (shares storage with the parameter).
  at::Tensor linear_weight(const std::string& linear_name) const override;

  // The input embedding [V, d] and the LM head weight [V, d] (the same tensor when tied).
  at::Tensor embed_weight() const;
  at::Tensor lm_head_weight() const;

 private:
  at::Tensor lm_logits(const at::Tensor& hidden_state) const;  // the LM head (tied or not)
  detail::HookedLinearImpl& linear_at(const std::string& linear_name) const;
  template <typename Step>
  at::Tensor greedy_loop(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos, Step step);

  LlamaConfig config_;
  std::shared_ptr<detail::LlamaBackboneImpl> model_;   // "model."
  std::shared_ptr<detail::HookedLinearImpl> lm_head_;   // nullptr when tied; never adapted
  std::map<std::string, std::shared_ptr<detail::HookedLinearImpl>> linears_;
};
TORCH_MODULE(LlamaModel);

// A randomly initialised model (normal weights with std initializer_range 0.02 as HF's
// _init_weights, RMS-norm weights 1), seeded by torch::manual_seed. Trainable. For tests.
LlamaModel make_llama(const LlamaConfig& config, double initializer_range = 0.02);

// Loads a Hugging Face LlamaForCausalLM directory: config.json plus model.safetensors or
// a sharded model.safetensors.index.json; F32, F16 and BF16 tensors become float32.
// Strict: a missing, unexpected or misshapen tensor is an Error{invalid} naming the file
// and the tensor. A tied checkpoint may still store lm_head.weight, which must equal the
// embedding; rotary inv_freq buffers are ignored. Parameters are frozen unless
// options.trainable. Throws Error{not_found} (no config.json / no weights),
// Error{unsupported} (dtype, config features: llama_config.h).
LlamaModel load_llama(const std::filesystem::path& base_dir, const LoadOptions& options = {});

// Writes config.json and model.safetensors (F32, HF names; tied => no lm_head.weight)
// into `dir` (created if needed), each file atomically.
void save_llama(const LlamaModel& model, const std::filesystem::path& dir);

}  // namespace gaggle::model
