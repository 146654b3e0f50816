// load_llama / save_llama: Hugging Face checkpoint directories <-> LlamaModel (strict by name).
#include <ATen/ATen.h>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/detail/strict_load.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"

namespace gaggle::model {

namespace fs = std::filesystem;

LlamaModel load_llama(const fs::path& base_dir, const LoadOptions& options) {
  LlamaConfig config = read_llama_config(base_dir);
  HfCheckpoint ck = HfCheckpoint::open(base_dir);
  LlamaModel model(config);
  std::vector<detail::TensorAlias> aliases;
  if (config.tie_word_embeddings)
    aliases.push_back({"lm_head.weight", "model.embed_tokens.weight",
                       "the weights are untied: set \"tie_word_embeddings\": false in config.json"});
  detail::load_parameters_strict(*model, ck, aliases, llama_ignorable_tensor);
  detail::finish_load(*model, options);
  return model;
}

void save_llama(const LlamaModel& model, const fs::path& dir) {
  detail::save_parameters(*model, model->config().to_json(), dir);
}

}  // namespace gaggle::model
