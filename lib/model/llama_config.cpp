#include "model/llama_config.h"

#include <algorithm>
#include <cmath>

#include "io/error.h"
#include "model/detail/config_fields.h"

namespace gaggle::model {
namespace {

const char* kHint = "config.json must be a Hugging Face LlamaForCausalLM config (as save_pretrained writes it)";

// rope_scaling: null, {"type"|"rope_type": "linear", "factor": f > 0} or "default".
double parse_rope_scaling(const detail::ConfigFields& f) {
  const nlohmann::json& scaling = f.at("rope_scaling");
  if (scaling.is_null()) return 1.0;
  const std::string hint = "gaggle supports \"rope_scaling\": null or {\"type\": \"linear\", \"factor\": F}";
  if (!scaling.is_object())
    f.fail("field 'rope_scaling' must be null or an object like {\"type\": \"linear\", \"factor\": 2.0}");
  std::string type;
  for (const char* key : {"type", "rope_type"})
    if (auto t = scaling.find(key); t != scaling.end() && !t->is_null()) {
      if (!t->is_string()) f.fail(std::string("field 'rope_scaling.") + key + "' must be a string");
      type = t->get<std::string>();
    }
  if (type.empty()) f.fail("field 'rope_scaling' has no 'type'");
  if (type == "default") return 1.0;
  if (type != "linear") f.unsupported("rope_scaling type '" + type + "' is not supported", hint);
  auto factor = scaling.find("factor");
  if (factor == scaling.end() || !factor->is_number() || !(factor->get<double>() > 0) ||
      !std::isfinite(factor->get<double>()))
    f.fail("field 'rope_scaling.factor' must be a positive number");
  return factor->get<double>();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

nlohmann::json LlamaConfig::to_json() const {
  nlohmann::json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (head_dim * num_attention_heads != hidden_size) j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = rope_linear_factor == 1.0 ? nlohmann::json(nullptr)
                                                : nlohmann::json{{"type", "linear"}, {"factor", rope_linear_factor}};
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  j["pretraining_tp"] = 1;
  j["attention_bias"] = false;
  j["torch_dtype"] = "float32";
  j["use_cache"] = true;
  return j;
}

LlamaConfig parse_llama_config(const nlohmann::json& j, const std::string& source) {
  const detail::ConfigFields f(j, source, kHint);
  if (const std::string type = f.string("model_type", "llama"); type != "llama")
    f.unsupported("model_type '" + type + "' is not a Llama model",
                  "this reader takes LlamaForCausalLM checkpoints (model_type \"llama\")");
  LlamaConfig c;
  c.vocab_size = f.positive_int("vocab_size", c.vocab_size);
  c.hidden_size = f.positive_int("hidden_size", c.hidden_size);
  c.intermediate_size = f.positive_int("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = f.positive_int("num_hidden_layers", c.num_hidden_layers, detail::ConfigFields::kMaxLayers);
  c.num_attention_heads = f.positive_int("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = f.positive_int("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = f.positive_int("max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    f.fail("field 'num_key_value_heads' (" + std::to_string(c.num_key_value_heads) +
           ") must divide 'num_attention_heads' (" + std::to_string(c.num_attention_heads) + ")");
  if (!f.at("head_dim").is_null()) {
    c.head_dim = f.positive_int("head_dim", 0);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      f.fail("field 'num_attention_heads' (" + std::to_string(c.num_attention_heads) + ") must divide 'hidden_size' (" +
             std::to_string(c.hidden_size) + ")");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0)  // rotary embeddings pair the two halves of each head
    f.fail("the head dimension (" + std::to_string(c.head_dim) + ") must be even for rotary embeddings");
  c.rms_norm_eps = f.positive_number("rms_norm_eps", c.rms_norm_eps);
  c.rope_theta = f.positive_number("rope_theta", c.rope_theta);
  c.rope_linear_factor = parse_rope_scaling(f);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", c.tie_word_embeddings);
  if (const std::string act = f.string("hidden_act", "silu"); act != "silu")
    f.unsupported("hidden_act '" + act + "' is not supported",
                  "Llama's MLP is down(silu(gate(x)) * up(x)): \"hidden_act\" must be \"silu\"");
  for (const char* key : {"attention_bias", "mlp_bias"})
    if (f.boolean(key, false))
      f.unsupported(std::string("'") + key + "': true is not supported",
                    "gaggle's Llama linears have no bias (as every released Llama)");
  // pretraining_tp > 1 only makes HF split the same products into slices: same result.
  f.positive_int("pretraining_tp", 1);
  c.bos_token_id = f.token_id("bos_token_id", c.bos_token_id);
  c.eos_token_id = f.token_id("eos_token_id", c.eos_token_id);
  c.pad_token_id = f.token_id("pad_token_id", c.pad_token_id);
  f.require_in_vocabulary(
      {{"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_id}, {"pad_token_id", c.pad_token_id}},
      c.vocab_size);
  return c;
}

LlamaConfig read_llama_config(const std::filesystem::path& base_dir) {
  std::filesystem::path path;
  auto json = detail::read_base_config(base_dir, &path);
  return parse_llama_config(json, path.string());
}

std::vector<std::string> llama_linear_names(const LlamaConfig& c) {
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i);
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) names.push_back(layer + ".self_attn." + p);
    for (const char* p : {"gate_proj", "up_proj", "down_proj"}) names.push_back(layer + ".mlp." + p);
  }
  return names;
}

std::vector<std::int64_t> llama_linear_shape(const LlamaConfig& c, const std::string& name) {
  auto names = llama_linear_names(c);
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw_error(ErrorCode::not_found, "model", "no linear layer '" + name + "' in this Llama model",
                "names look like model.layers.0.self_attn.q_proj; see 'gaggle inspect BASE_DIR'");
  if (ends_with(name, ".q_proj")) return {c.q_dim(), c.hidden_size};
  if (ends_with(name, ".k_proj") || ends_with(name, ".v_proj")) return {c.kv_dim(), c.hidden_size};
  if (ends_with(name, ".o_proj")) return {c.hidden_size, c.q_dim()};
  if (ends_with(name, ".down_proj")) return {c.hidden_size, c.intermediate_size};
  return {c.intermediate_size, c.hidden_size};  // gate_proj, up_proj
}

std::vector<ExpectedTensor> llama_expected_tensors(const LlamaConfig& c) {
  std::vector<ExpectedTensor> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}});
  out.push_back({"model.norm.weight", {c.hidden_size}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}});
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i);
    out.push_back({layer + ".input_layernorm.weight", {c.hidden_size}});
    out.push_back({layer + ".post_attention_layernorm.weight", {c.hidden_size}});
  }
  for (const auto& name : llama_linear_names(c)) out.push_back({name + ".weight", llama_linear_shape(c, name)});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

bool llama_ignorable_tensor(const std::string& name) {
  return name.rfind("model.layers.", 0) == 0 && ends_with(name, ".self_attn.rotary_emb.inv_freq");
}

}  // namespace gaggle::model
