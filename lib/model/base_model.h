#pragma once
// What train, eval and route need from a base model, whatever its architecture (issue #14,
// "Decoder-only bases"; design.md §6). T5ModelImpl (encoder-decoder) and LlamaModelImpl
// (decoder-only) both implement it, so the rooms above lib/model never branch on the
// architecture: a third architecture implements this interface, its config and its
// linear layout (linear_layout.h), all inside lib/model.
//
// An example is a prompt and a target as token ids, already in the base's format
// (token_format.h: T5 "input </s>" / "target </s>"; Llama "<s> input" / "target </s>").
// How the model reads one is its business: T5 encodes the prompt and decodes the target;
// Llama runs prompt ++ target causally and scores only the target positions.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/architecture.h"
#include "model/linear_hook.h"
#include "model/load_options.h"
#include "model/token_format.h"

namespace gaggle::model {

using TokenRows = std::vector<std::vector<std::int64_t>>;

struct RankOptions {
  std::int64_t max_rows = 64;  // (input, choice) rows per forward pass
};

class BaseModel {
 public:
  virtual ~BaseModel() = default;

  virtual Architecture architecture() const = 0;
  // The torch module (train() / eval() / parameters()).
  virtual torch::nn::Module& module() = 0;
  virtual at::Device device() const = 0;
  virtual std::int64_t hidden_size() const = 0;  // d_model: the width of prompt_embeddings()
  virtual std::int64_t vocab_size() const = 0;
  // How this base reads text as tokens (T5's EOS is its tokenizer's).
  virtual TokenFormat token_format(std::int64_t tokenizer_eos_id) const = 0;

  // ---- the hook point (linear_hook.h) ----
  virtual std::vector<std::string> linear_names() const = 0;  // HF module paths, lm_head excluded
  virtual void set_adapter(const std::string& linear_name, std::shared_ptr<LinearAdapter> adapter) = 0;
  virtual std::shared_ptr<LinearAdapter> adapter(const std::string& linear_name) const = 0;
  virtual void clear_adapters() = 0;
  virtual at::Tensor linear_weight(const std::string& linear_name) const = 0;  // [d_out, d_in]

  // ---- examples ----
  // Teacher-forced NLL of every target token given its prompt: [B, L] float32 (L the
  // longest target), 0 past each target's end. Differentiable; adapters as attached.
  // The prompt's own tokens are never scored. Empty prompts are an Error{invalid}.
  virtual at::Tensor target_nll(const TokenRows& prompts, const TokenRows& targets) = 0;

  // Rank classification: the score of each choice given its prompt, lower is better
  // (T5: mean token NLL, as the paper; Llama: summed NLL = -log p(choice | prompt), as
  // causal-LM harnesses do). result[b][c] for choices[b][c]. Under InferenceMode.
  virtual std::vector<std::vector<double>> rank_classification_nll(const TokenRows& prompts,
                                                                   const std::vector<TokenRows>& choices,
                                                                   const RankOptions& options) = 0;

  // Greedy continuation of each prompt with the KV cache, under InferenceMode: the new
  // ids per prompt, stopping after EOS (kept; T5 may pad finished rows) or after
  // max_new_tokens.
  virtual TokenRows generate(const TokenRows& prompts, std::int64_t max_new_tokens) = 0;

  // The retrieval query of each prompt, [B, d_model] float32 on the model's device: the
  // mean over the prompt's tokens of the last hidden state (T5: the encoder output;
  // Llama: the final-norm hidden state). Adapters as attached (callers clear them).
  virtual at::Tensor prompt_embeddings(const TokenRows& prompts) = 0;

  // Which token rows each linear reads during target_nll(), for average activations: the
  // masks of one batch ([B, rows], 1 = a real token), and the index of a linear's mask.
  // T5: {encoder tokens, target positions}; Llama: {prompt ++ target}.
  virtual std::vector<at::Tensor> row_masks(const TokenRows& prompts, const TokenRows& targets) const = 0;
  virtual std::size_t row_mask_of(const std::string& linear_name) const = 0;
};

// Loads the base at `base_dir` as its config.json says (architecture.h): load_t5 or
// load_llama, with their errors.
std::shared_ptr<BaseModel> load_base(const std::filesystem::path& base_dir, const LoadOptions& options = {});

}  // namespace gaggle::model
