#include "model/base_info.h"

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
  j["config"] = config.to_json();
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

BaseInfo describe_base(const fs::path& dir) {
  BaseInfo info;
  info.dir = dir;
  info.config = read_t5_config(dir);
  const T5Config& c = info.config;
  HfCheckpoint ck = HfCheckpoint::open(dir);
  info.weight_files = ck.files();

  std::set<std::string> consumed, dtypes;
  std::vector<std::string> missing;
  for (const auto& want : t5_expected_tensors(c)) {
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
  std::vector<std::string> ignorable = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                                        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"};
  if (c.tie_word_embeddings) ignorable.push_back("lm_head.weight");
  for (const auto& [name, e] : ck.tensors())
    if (!consumed.count(name) && std::find(ignorable.begin(), ignorable.end(), name) == ignorable.end())
      throw_error(ErrorCode::invalid, "model", ck.source() + ": unexpected tensor '" + name + "'",
                  "config.json describes a different architecture than the weights hold");
  for (const auto& d : dtypes) info.dtype += (info.dtype.empty() ? "" : "+") + d;

  std::error_code ec;
  if (fs::exists(dir / "spiece.model", ec)) info.tokenizer = "spiece.model";
  else if (fs::exists(dir / "tokenizer.json", ec)) info.tokenizer = "tokenizer.json";

  info.architecture = "T5 encoder-decoder: " + std::to_string(c.num_layers) + "+" + std::to_string(c.num_decoder_layers) +
                      " layers, d_model " + std::to_string(c.d_model) + ", " + std::to_string(c.num_heads) +
                      " heads x d_kv " + std::to_string(c.d_kv) + ", d_ff " + std::to_string(c.d_ff) + " (" +
                      (c.gated ? "gated-gelu" : "relu") + "), " + (c.tie_word_embeddings ? "tied" : "untied") +
                      " embeddings, vocab " + std::to_string(c.vocab_size) + ", " +
                      std::to_string(c.relative_attention_num_buckets) + " position buckets up to " +
                      std::to_string(c.relative_attention_max_distance);
  info.fingerprint = base_fingerprint(dir);
  for (const auto& name : t5_linear_names(c)) {
    auto shape = t5_linear_shape(c, name);
    info.linears.push_back({name, shape[0], shape[1]});
  }
  return info;
}

}  // namespace gaggle::model
