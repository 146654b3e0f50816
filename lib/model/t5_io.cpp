// load_t5 / save_t5: Hugging Face checkpoint directories <-> T5Model (strict by name).
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <set>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/hf_checkpoint.h"
#include "model/t5.h"

namespace gaggle::model {

namespace fs = std::filesystem;

namespace {

std::string list_names(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 8) s += " and " + std::to_string(names.size() - 8) + " more";
  return s;
}

// Converts the stored tensor into `dst` (a contiguous float32 CPU tensor of the same shape).
void read_into(const HfCheckpoint& ck, const HfCheckpoint::Entry& e, at::Tensor& dst) {
  const auto& info = *e.info;
  if (info.dtype != io::DType::F32 && info.dtype != io::DType::F16 && info.dtype != io::DType::BF16)
    throw_error(ErrorCode::unsupported, "model",
                e.file->path().string() + ": tensor '" + info.name + "' has dtype " + std::string(io::dtype_name(info.dtype)),
                "base model weights must be F32, F16 or BF16");
  io::convert_to_f32(info.dtype, ck.data(e), dst.data_ptr<float>(), static_cast<std::size_t>(info.numel()));
}

}  // namespace

T5Model load_t5(const fs::path& base_dir, const LoadOptions& options) {
  T5Config config = read_t5_config(base_dir);
  HfCheckpoint ck = HfCheckpoint::open(base_dir);
  T5Model model(config);
  std::set<std::string> consumed;
  std::vector<std::string> missing;
  {
    at::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      const std::string& name = item.key();
      at::Tensor& param = item.value();
      const auto* e = ck.find(name);
      if (!e) {
        missing.push_back(name);
        continue;
      }
      if (e->info->shape != param.sizes().vec())
        throw_error(ErrorCode::invalid, "model",
                    e->file->path().string() + ": tensor '" + name + "' has shape " + io::shape_to_string(e->info->shape) +
                        ", expected " + io::shape_to_string(param.sizes().vec()) + " from config.json",
                    "config.json and the weights do not belong together");
      read_into(ck, *e, param);  // a fresh model's parameters are contiguous float32 on the CPU
      consumed.insert(name);
    }
    if (!missing.empty())
      throw_error(ErrorCode::invalid, "model",
                  ck.source() + ": missing tensor" + (missing.size() > 1 ? "s " : " ") + list_names(missing),
                  "the checkpoint is incomplete or config.json describes another model");
    // Aliases Hugging Face may store: they must equal what they alias.
    std::vector<std::string> aliases = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"};
    if (config.tie_word_embeddings) aliases.push_back("lm_head.weight");
    at::Tensor shared = model->shared_weight();
    for (const auto& alias : aliases) {
      const auto* e = ck.find(alias);
      if (!e) continue;
      if (e->info->shape != shared.sizes().vec())
        throw_error(ErrorCode::invalid, "model", e->file->path().string() + ": tensor '" + alias + "' has shape " +
                                                     io::shape_to_string(e->info->shape) + ", expected " +
                                                     io::shape_to_string(shared.sizes().vec()) + " (it aliases shared.weight)");
      at::Tensor tmp = at::empty(shared.sizes(), at::kFloat);
      read_into(ck, *e, tmp);
      if (!at::equal(tmp, shared))
        throw_error(ErrorCode::invalid, "model",
                    e->file->path().string() + ": tensor '" + alias + "' differs from shared.weight",
                    alias == "lm_head.weight" ? "the weights are untied: set \"tie_word_embeddings\": false in config.json"
                                              : "T5 embeds encoder and decoder tokens with shared.weight");
      consumed.insert(alias);
    }
    // Old checkpoints carry a cross-attention position bias that T5 never uses (HF ignores it too).
    consumed.insert("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight");
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, e] : ck.tensors())
    if (!consumed.count(name)) unexpected.push_back(name);
  if (!unexpected.empty())
    throw_error(ErrorCode::invalid, "model",
                ck.source() + ": unexpected tensor" + (unexpected.size() > 1 ? "s " : " ") + list_names(unexpected),
                "config.json describes a different architecture than the weights hold");
  model->eval();
  if (options.device != "cpu") {
    try {
      model->to(at::Device(options.device));
    } catch (const c10::Error& e) {
      throw_error(ErrorCode::unsupported, "model", "cannot move the model to '" + options.device + "': " + e.what_without_backtrace(),
                  "use --device cpu, or cuda:N with N below the number of GPUs");
    }
  }
  if (!options.trainable)
    for (auto& p : model->parameters()) p.set_requires_grad(false);
  return model;
}

void save_t5(const T5Model& model, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_error(ErrorCode::io, "model", "cannot create '" + dir.string() + "': " + ec.message());
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor t = item.value().detach().to(at::kCPU, at::kFloat).contiguous();
    writer.add_f32(name, t.sizes().vec(), std::span<const float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  }
  io::write_json_file_atomic(dir / "config.json", model->config().to_json());
  writer.write(dir / "model.safetensors");
}

}  // namespace gaggle::model
