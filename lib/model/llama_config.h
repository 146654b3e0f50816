#pragma once
// LlamaConfig — what a Hugging Face LlamaForCausalLM checkpoint's config.json says
// (issue #14, decoder-only bases). Torch-free: cmd/ and inspect may include it.
//
// Defaults are Hugging Face's LlamaConfig defaults, so a config.json that lists only what
// differs parses to the same model. What gaggle cannot compute the way HF does is refused
// (Error{unsupported}), never approximated: rope_scaling other than null / linear,
// attention or MLP biases, an activation other than silu.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/expected_tensor.h"

namespace gaggle::model {

struct LlamaConfig {
  std::int64_t vocab_size = 32000;
  std::int64_t hidden_size = 4096;         // d_model
  std::int64_t intermediate_size = 11008;  // d_ff of the SwiGLU MLP
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  std::int64_t num_key_value_heads = 32;   // HF: defaults to num_attention_heads (no GQA)
  std::int64_t head_dim = 128;             // HF: hidden_size / num_attention_heads unless given
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  // rope_scaling {"type": "linear", "factor": f}: positions are divided by f before the
  // rotation (HF LlamaLinearScalingRotaryEmbedding). 1 = none (rope_scaling null).
  double rope_linear_factor = 1.0;
  bool tie_word_embeddings = false;        // HF Llama default: false (lm_head.weight stored)
  std::int64_t bos_token_id = 1;
  std::int64_t eos_token_id = 2;
  std::int64_t pad_token_id = -1;          // -1: none (HF's null)

  std::int64_t q_dim() const { return num_attention_heads * head_dim; }
  std::int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  // The config.json Hugging Face would write for this model.
  nlohmann::json to_json() const;
};

// Parses and validates a config.json object; `source` names it in errors (the path).
// Throws Error{invalid} (missing / ill-typed / inconsistent field, named: e.g. heads that
// do not divide hidden_size, key/value heads that do not divide the query heads, an odd
// head_dim) or Error{unsupported} (model_type other than "llama", hidden_act other than
// "silu", rope_scaling other than null / linear, attention_bias or mlp_bias true).
LlamaConfig parse_llama_config(const nlohmann::json& json, const std::string& source);

// Reads <base_dir>/config.json. Throws Error{not_found} when absent.
LlamaConfig read_llama_config(const std::filesystem::path& base_dir);

// Hugging Face module paths of every linear layer, in module order: per layer
// self_attn.{q,k,v,o}_proj, then mlp.{gate,up,down}_proj. lm_head is not included.
// Example: "model.layers.0.self_attn.q_proj", "model.layers.3.mlp.down_proj".
std::vector<std::string> llama_linear_names(const LlamaConfig& config);

// The shape [d_out, d_in] of the linear at `linear_name`; Error{not_found} if unknown.
std::vector<std::int64_t> llama_linear_shape(const LlamaConfig& config, const std::string& linear_name);

// The safetensors tensor names (and shapes) a checkpoint of this config must hold, sorted
// by name; tied checkpoints hold no lm_head.weight.
std::vector<ExpectedTensor> llama_expected_tensors(const LlamaConfig& config);

// Tensors a Llama checkpoint may hold that the model does not use: the rotary inv_freq
// buffers older conversions saved ("model.layers.N.self_attn.rotary_emb.inv_freq").
bool llama_ignorable_tensor(const std::string& name);

}  // namespace gaggle::model
