#pragma once
// T5Config — what a Hugging Face T5 checkpoint's config.json says (issue #3, item 1).
// Torch-free: cmd/ and torch-free tools may include it.
//
// Covers t5-small/base/large/xl (v1.0, "relu"), T5 v1.1, LM-adapted and Flan-T5
// ("gated-gelu"). Defaults are Hugging Face's T5Config defaults, so a config.json that
// lists only what differs (as save_pretrained writes it) parses to the same model.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/expected_tensor.h"

namespace gaggle::model {

struct T5Config {
  std::int64_t vocab_size = 32128;
  std::int64_t d_model = 512;
  std::int64_t d_kv = 64;
  std::int64_t d_ff = 2048;
  std::int64_t num_layers = 6;           // encoder blocks
  std::int64_t num_decoder_layers = 6;   // decoder blocks (HF: defaults to num_layers)
  std::int64_t num_heads = 8;
  std::int64_t relative_attention_num_buckets = 32;
  std::int64_t relative_attention_max_distance = 128;
  bool gated = false;                    // feed_forward_proj "gated-gelu" (wi_0, wi_1, gelu tanh) vs "relu" (wi)
  bool tie_word_embeddings = true;       // HF default: true (lm_head = shared, decoder output * d_model^-0.5)
  double layer_norm_epsilon = 1e-6;
  std::int64_t pad_token_id = 0;
  std::int64_t eos_token_id = 1;
  std::int64_t decoder_start_token_id = 0;

  std::int64_t inner_dim() const { return num_heads * d_kv; }
  // The config.json Hugging Face would write for this model (model_type "t5",
  // feed_forward_proj, dense_act_fn, is_gated_act, ...).
  nlohmann::json to_json() const;
};

// Parses and validates a config.json object. `source` names it in errors (the path).
// Throws Error{invalid} (missing/ill-typed/non-positive field, named) or
// Error{unsupported} (model_type other than "t5", feed_forward_proj other than
// "relu" / "gated-gelu").
T5Config parse_t5_config(const nlohmann::json& json, const std::string& source);

// Reads <base_dir>/config.json. Throws Error{not_found} when absent.
T5Config read_t5_config(const std::filesystem::path& base_dir);

// Hugging Face module paths of every linear layer, in module order: encoder blocks
// (SelfAttention q,k,v,o; DenseReluDense wi | wi_0,wi_1; wo), then decoder blocks
// (SelfAttention, EncDecAttention, DenseReluDense). lm_head is not included.
// Example: "encoder.block.0.layer.0.SelfAttention.q", "decoder.block.1.layer.1.EncDecAttention.o",
// "decoder.block.0.layer.2.DenseReluDense.wi_0".
std::vector<std::string> t5_linear_names(const T5Config& config);

// The shape [d_out, d_in] of the linear at `linear_name`; Error{not_found} if unknown.
std::vector<std::int64_t> t5_linear_shape(const T5Config& config, const std::string& linear_name);

// The safetensors tensor names (and shapes) a checkpoint of this config must hold,
// sorted by name; tied checkpoints hold only "shared.weight" (no lm_head.weight).
std::vector<ExpectedTensor> t5_expected_tensors(const T5Config& config);

}  // namespace gaggle::model
