#include "model/t5_config.h"

#include <algorithm>

#include "io/error.h"
#include "model/detail/config_fields.h"

namespace gaggle::model {

nlohmann::json T5Config::to_json() const {
  nlohmann::json j;
  j["architectures"] = {"T5ForConditionalGeneration"};
  j["model_type"] = "t5";
  j["is_encoder_decoder"] = true;
  j["vocab_size"] = vocab_size;
  j["d_model"] = d_model;
  j["d_kv"] = d_kv;
  j["d_ff"] = d_ff;
  j["num_layers"] = num_layers;
  j["num_decoder_layers"] = num_decoder_layers;
  j["num_heads"] = num_heads;
  j["relative_attention_num_buckets"] = relative_attention_num_buckets;
  j["relative_attention_max_distance"] = relative_attention_max_distance;
  j["feed_forward_proj"] = gated ? "gated-gelu" : "relu";
  j["dense_act_fn"] = gated ? "gelu_new" : "relu";
  j["is_gated_act"] = gated;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["pad_token_id"] = pad_token_id;
  j["eos_token_id"] = eos_token_id;
  j["decoder_start_token_id"] = decoder_start_token_id;
  j["dropout_rate"] = 0.0;
  j["initializer_factor"] = 1.0;
  j["torch_dtype"] = "float32";
  j["use_cache"] = true;
  return j;
}

T5Config parse_t5_config(const nlohmann::json& j, const std::string& source) {
  const detail::ConfigFields f(j, source,
                               "config.json must be a Hugging Face T5 config (as save_pretrained writes it)");
  if (const std::string type = f.string("model_type", "t5"); type != "t5")
    f.unsupported("model_type '" + type + "' is not supported",
                  "gaggle's base models are T5 checkpoints (t5, T5 v1.1, LM-adapted, Flan-T5)");
  if (const nlohmann::json& v = f.at("is_encoder_decoder"); v.is_boolean() && !v.get<bool>())
    f.unsupported("an encoder-only T5 config is not supported", "use a T5ForConditionalGeneration checkpoint");
  T5Config c;
  c.vocab_size = f.positive_int("vocab_size", c.vocab_size);
  c.d_model = f.positive_int("d_model", c.d_model);
  c.d_kv = f.positive_int("d_kv", c.d_kv);
  c.d_ff = f.positive_int("d_ff", c.d_ff);
  c.num_layers = f.positive_int("num_layers", c.num_layers, detail::ConfigFields::kMaxLayers);
  c.num_decoder_layers = f.positive_int("num_decoder_layers", c.num_layers, detail::ConfigFields::kMaxLayers);
  c.num_heads = f.positive_int("num_heads", c.num_heads);
  c.relative_attention_num_buckets = f.positive_int("relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.relative_attention_max_distance =
      f.positive_int("relative_attention_max_distance", c.relative_attention_max_distance);
  if (c.relative_attention_num_buckets < 4) f.fail("field 'relative_attention_num_buckets' must be at least 4");
  const std::string proj = f.string("feed_forward_proj", "relu");
  if (proj == "relu") {
    c.gated = false;
  } else if (proj == "gated-gelu") {
    c.gated = true;
  } else {
    f.unsupported("feed_forward_proj '" + proj + "' is not supported",
                  "supported: \"relu\" (T5 v1.0) and \"gated-gelu\" (T5 v1.1, LM-adapted, Flan-T5)");
  }
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", c.tie_word_embeddings);
  c.layer_norm_epsilon = f.positive_number("layer_norm_epsilon", c.layer_norm_epsilon);
  c.pad_token_id = f.token_id("pad_token_id", c.pad_token_id);
  c.eos_token_id = f.token_id("eos_token_id", c.eos_token_id);
  c.decoder_start_token_id = f.token_id("decoder_start_token_id", c.pad_token_id);
  f.require_in_vocabulary({{"pad_token_id", c.pad_token_id},
                           {"eos_token_id", c.eos_token_id},
                           {"decoder_start_token_id", c.decoder_start_token_id}},
                          c.vocab_size);
  return c;
}

T5Config read_t5_config(const std::filesystem::path& base_dir) {
  std::filesystem::path path;
  auto json = detail::read_base_config(base_dir, &path);
  return parse_t5_config(json, path.string());
}

std::vector<std::string> t5_linear_names(const T5Config& c) {
  std::vector<std::string> names;
  auto attention = [&](const std::string& prefix) {
    for (const char* p : {"q", "k", "v", "o"}) names.push_back(prefix + "." + p);
  };
  auto ffn = [&](const std::string& prefix) {
    if (c.gated) {
      names.push_back(prefix + ".DenseReluDense.wi_0");
      names.push_back(prefix + ".DenseReluDense.wi_1");
    } else {
      names.push_back(prefix + ".DenseReluDense.wi");
    }
    names.push_back(prefix + ".DenseReluDense.wo");
  };
  for (std::int64_t i = 0; i < c.num_layers; ++i) {
    std::string b = "encoder.block." + std::to_string(i) + ".layer.";
    attention(b + "0.SelfAttention");
    ffn(b + "1");
  }
  for (std::int64_t i = 0; i < c.num_decoder_layers; ++i) {
    std::string b = "decoder.block." + std::to_string(i) + ".layer.";
    attention(b + "0.SelfAttention");
    attention(b + "1.EncDecAttention");
    ffn(b + "2");
  }
  return names;
}

std::vector<std::int64_t> t5_linear_shape(const T5Config& c, const std::string& name) {
  auto ends_with = [&](const char* suffix) {
    std::string s(suffix);
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  auto names = t5_linear_names(c);
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw_error(ErrorCode::not_found, "model", "no linear layer '" + name + "' in this T5 model",
                "names look like encoder.block.0.layer.0.SelfAttention.q; see 'gaggle inspect BASE_DIR'");
  if (ends_with("Attention.o")) return {c.d_model, c.inner_dim()};
  if (ends_with("Attention.q") || ends_with("Attention.k") || ends_with("Attention.v")) return {c.inner_dim(), c.d_model};
  if (ends_with(".wo")) return {c.d_model, c.d_ff};
  return {c.d_ff, c.d_model};  // wi, wi_0, wi_1
}

std::vector<ExpectedTensor> t5_expected_tensors(const T5Config& c) {
  std::vector<ExpectedTensor> out;
  out.push_back({"shared.weight", {c.vocab_size, c.d_model}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, c.d_model}});
  for (const auto& name : t5_linear_names(c)) out.push_back({name + ".weight", t5_linear_shape(c, name)});
  auto stack = [&](const char* which, std::int64_t blocks, int layers_per_block) {
    std::string s = which;
    out.push_back({s + ".final_layer_norm.weight", {c.d_model}});
    out.push_back({s + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                   {c.relative_attention_num_buckets, c.num_heads}});
    for (std::int64_t i = 0; i < blocks; ++i)
      for (int l = 0; l < layers_per_block; ++l)
        out.push_back({s + ".block." + std::to_string(i) + ".layer." + std::to_string(l) + ".layer_norm.weight", {c.d_model}});
  };
  stack("encoder", c.num_layers, 2);
  stack("decoder", c.num_decoder_layers, 3);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace gaggle::model
