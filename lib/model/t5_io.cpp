// load_t5 / save_t5: Hugging Face checkpoint directories <-> T5Model (strict by name).
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/detail/strict_load.h"
#include "model/hf_checkpoint.h"
#include "model/t5.h"

namespace gaggle::model {

namespace fs = std::filesystem;

T5Model load_t5(const fs::path& base_dir, const LoadOptions& options) {
  T5Config config = read_t5_config(base_dir);
  HfCheckpoint ck = HfCheckpoint::open(base_dir);
  T5Model model(config);
  // Aliases Hugging Face may store: they must equal what they alias.
  const std::string shared_hint = "T5 embeds encoder and decoder tokens with shared.weight";
  std::vector<detail::TensorAlias> aliases = {{"encoder.embed_tokens.weight", "shared.weight", shared_hint},
                                              {"decoder.embed_tokens.weight", "shared.weight", shared_hint}};
  if (config.tie_word_embeddings)
    aliases.push_back({"lm_head.weight", "shared.weight",
                       "the weights are untied: set \"tie_word_embeddings\": false in config.json"});
  // Old checkpoints carry a cross-attention position bias that T5 never uses (HF ignores it too).
  detail::load_parameters_strict(*model, ck, aliases, [](const std::string& name) {
    return name == "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";
  });
  detail::finish_load(*model, options);
  return model;
}

void save_t5(const T5Model& model, const fs::path& dir, io::DType dtype) {
  detail::save_parameters(*model, model->config().to_json(), dir, dtype);
}

}  // namespace gaggle::model
