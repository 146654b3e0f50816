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
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_error(ErrorCode::io, "model", "cannot create '" + dir.string() + "': " + ec.message());
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const auto& item : model->named_parameters()) {
    at::Tensor t = item.value().detach().to(at::kCPU, at::kFloat).contiguous();
    writer.add_f32(item.key(), t.sizes().vec(), std::span<const float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  }
  io::write_json_file_atomic(dir / "config.json", model->config().to_json());
  writer.write(dir / "model.safetensors");
}

}  // namespace gaggle::model
