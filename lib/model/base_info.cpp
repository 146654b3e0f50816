#include "model/base_info.h"

#include <algorithm>
#include <functional>
#include <set>

#include "io/error.h"
#include "model/fingerprint.h"
#include "model/hf_checkpoint.h"

namespace gaggle::model {

namespace fs = std::filesystem;

bool is_base_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / "config.json", ec);
}

nlohmann::ordered_json BaseInfo::to_json() const {
  nlohmann::ordered_json j;
  j["path"] = dir.string();
  j["kind"] = "base model";
  j["architecture"] = architecture;
  j["config"] = kind == Architecture::llama ? llama.to_json() : config.to_json();
  j["parameters"] = num_parameters;
  j["dtype"] = dtype;
  j["weight_files"] = nlohmann::ordered_json::array();
  for (const auto& f : weight_files) j["weight_files"].push_back(f.filename().string());
  j["tokenizer"] = tokenizer.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(tokenizer);
  j["fingerprint"] = fingerprint;
  j["linear_modules"] = nlohmann::ordered_json::array();
  for (const auto& l : linears) j["linear_modules"].push_back({{"name", l.name}, {"d_out", l.d_out}, {"d_in", l.d_in}});
  return j;
}

namespace {

std::string fmt_number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string t5_summary(const T5Config& c) {
  return "T5 encoder-decoder: " + std::to_string(c.num_layers) + "+" + std::to_string(c.num_decoder_layers) +
         " layers, d_model " + std::to_string(c.d_model) + ", " + std::to_string(c.num_heads) + " heads x d_kv " +
         std::to_string(c.d_kv) + ", d_ff " + std::to_string(c.d_ff) + " (" + (c.gated ? "gated-gelu" : "relu") + "), " +
         (c.tie_word_embeddings ? "tied" : "untied") + " embeddings, vocab " + std::to_string(c.vocab_size) + ", " +
         std::to_string(c.relative_attention_num_buckets) + " position buckets up to " +
         std::to_string(c.relative_attention_max_distance);
}

std::string llama_summary(const LlamaConfig& c) {
  return "Llama decoder-only: " + std::to_string(c.num_hidden_layers) + " layers, hidden " + std::to_string(c.hidden_size) +
         ", " + std::to_string(c.num_attention_heads) + " query heads / " + std::to_string(c.num_key_value_heads) +
         " key-value heads x head_dim " + std::to_string(c.head_dim) + ", intermediate " +
         std::to_string(c.intermediate_size) + " (SwiGLU), RoPE theta " + fmt_number(c.rope_theta) +
         (c.rope_linear_factor != 1.0 ? " (linear scaling x" + fmt_number(c.rope_linear_factor) + ")" : "") + ", " +
         (c.tie_word_embeddings ? "tied" : "untied") + " embeddings, vocab " + std::to_string(c.vocab_size) +
         ", context " + std::to_string(c.max_position_embeddings);
}

}  // namespace

BaseInfo describe_base(const fs::path& dir) {
  BaseInfo info;
  info.dir = dir;
  info.kind = read_architecture(dir);
  std::vector<ExpectedTensor> expected;
  std::vector<std::string> ignorable;
  std::vector<std::string> linear_names;
  std::function<std::vector<std::int64_t>(const std::string&)> linear_shape;
  if (info.kind == Architecture::llama) {
    info.llama = read_llama_config(dir);
    const LlamaConfig& c = info.llama;
    expected = llama_expected_tensors(c);
    if (c.tie_word_embeddings) ignorable.push_back("lm_head.weight");
    info.architecture = llama_summary(c);
    linear_names = llama_linear_names(c);
    linear_shape = [&c](const std::string& name) { return llama_linear_shape(c, name); };
  } else {
    info.config = read_t5_config(dir);
    const T5Config& c = info.config;
    expected = t5_expected_tensors(c);
    ignorable = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                 "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"};
    if (c.tie_word_embeddings) ignorable.push_back("lm_head.weight");
    info.architecture = t5_summary(c);
    linear_names = t5_linear_names(c);
    linear_shape = [&c](const std::string& name) { return t5_linear_shape(c, name); };
  }
  HfCheckpoint ck = HfCheckpoint::open(dir);
  info.weight_files = ck.files();

  std::set<std::string> consumed, dtypes;
  std::vector<std::string> missing;
  for (const auto& want : expected) {
    const auto* e = ck.find(want.name);
    if (!e) {
      missing.push_back(want.name);
      continue;
    }
    if (e->info->shape != want.shape)
      throw_error(ErrorCode::invalid, "model",
                  e->file->path().string() + ": tensor '" + want.name + "' has shape " + io::shape_to_string(e->info->shape) +
                      ", expected " + io::shape_to_string(want.shape) + " from config.json");
    consumed.insert(want.name);
    dtypes.insert(std::string(io::dtype_name(e->info->dtype)));
    info.num_parameters += e->info->numel();
  }
  if (!missing.empty())
    throw_error(ErrorCode::invalid, "model", ck.source() + ": missing tensor '" + missing.front() + "'" +
                                                 (missing.size() > 1 ? " and " + std::to_string(missing.size() - 1) + " more" : ""),
                "the checkpoint is incomplete or config.json describes another model");
  for (const auto& [name, e] : ck.tensors()) {
    const bool ignored = std::find(ignorable.begin(), ignorable.end(), name) != ignorable.end() ||
                         (info.kind == Architecture::llama && llama_ignorable_tensor(name));
    if (!consumed.count(name) && !ignored)
      throw_error(ErrorCode::invalid, "model", ck.source() + ": unexpected tensor '" + name + "'",
                  "config.json describes a different architecture than the weights hold");
  }
  for (const auto& d : dtypes) info.dtype += (info.dtype.empty() ? "" : "+") + d;

  std::error_code ec;
  for (const char* tokenizer : {"spiece.model", "tokenizer.model", "tokenizer.json"})
    if (fs::exists(dir / tokenizer, ec)) {
      info.tokenizer = tokenizer;
      break;
    }

  info.fingerprint = base_fingerprint(dir);
  for (const auto& name : linear_names) {
    auto shape = linear_shape(name);
    info.linears.push_back({name, shape[0], shape[1]});
  }
  return info;
}

}  // namespace gaggle::model
