#include "model/detail/strict_load.h"

#include <ATen/ATen.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include <span>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"

namespace gaggle::model::detail {

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

void check_shape(const HfCheckpoint::Entry& e, const at::Tensor& want, const std::string& what) {
  if (e.info->shape != want.sizes().vec())
    throw_error(ErrorCode::invalid, "model",
                e.file->path().string() + ": tensor '" + e.info->name + "' has shape " + io::shape_to_string(e.info->shape) +
                    ", expected " + io::shape_to_string(want.sizes().vec()) + " " + what,
                "config.json and the weights do not belong together");
}

}  // namespace

void load_parameters_strict(torch::nn::Module& module, const HfCheckpoint& ck, const std::vector<TensorAlias>& aliases,
                            const std::function<bool(const std::string&)>& ignorable) {
  std::set<std::string> consumed;
  std::vector<std::string> missing;
  std::map<std::string, at::Tensor> params;
  at::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    params[item.key()] = item.value();
    const auto* e = ck.find(item.key());
    if (!e) {
      missing.push_back(item.key());
      continue;
    }
    check_shape(*e, item.value(), "from config.json");
    read_into(ck, *e, item.value());  // a fresh model's parameters are contiguous float32 on the CPU
    consumed.insert(item.key());
  }
  if (!missing.empty())
    throw_error(ErrorCode::invalid, "model",
                ck.source() + ": missing tensor" + (missing.size() > 1 ? "s " : " ") + list_names(missing),
                "the checkpoint is incomplete or config.json describes another model");
  for (const auto& alias : aliases) {
    const auto* e = ck.find(alias.name);
    if (!e) continue;
    const at::Tensor& target = params.at(alias.target);
    check_shape(*e, target, "(it aliases " + alias.target + ")");
    at::Tensor tmp = at::empty(target.sizes(), at::kFloat);
    read_into(ck, *e, tmp);
    if (!at::equal(tmp, target))
      throw_error(ErrorCode::invalid, "model", e->file->path().string() + ": tensor '" + alias.name + "' differs from " + alias.target,
                  alias.hint);
    consumed.insert(alias.name);
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, e] : ck.tensors())
    if (!consumed.count(name) && !(ignorable && ignorable(name))) unexpected.push_back(name);
  if (!unexpected.empty())
    throw_error(ErrorCode::invalid, "model",
                ck.source() + ": unexpected tensor" + (unexpected.size() > 1 ? "s " : " ") + list_names(unexpected),
                "config.json describes a different architecture than the weights hold");
}

void finish_load(torch::nn::Module& module, const LoadOptions& options) {
  module.eval();
  if (options.device != "cpu") {
    try {
      module.to(at::Device(options.device));
    } catch (const c10::Error& e) {
      throw_error(ErrorCode::unsupported, "model", "cannot move the model to '" + options.device + "': " + e.what_without_backtrace(),
                  "use --device cpu, or cuda:N with N below the number of GPUs");
    }
  }
  if (!options.trainable)
    for (auto& p : module.parameters()) p.set_requires_grad(false);
}

void save_parameters(const torch::nn::Module& module, const nlohmann::json& config, const std::filesystem::path& dir,
                     io::DType dtype) {
  const char* torch_dtype = dtype == io::DType::F32 ? "float32" : dtype == io::DType::BF16 ? "bfloat16"
                            : dtype == io::DType::F16                                     ? "float16"
                                                                                          : nullptr;
  if (!torch_dtype)
    throw_error(ErrorCode::usage, "model",
                "weights are saved as F32, BF16 or F16, not " + std::string(io::dtype_name(dtype)));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_error(ErrorCode::io, "model", "cannot create '" + dir.string() + "': " + ec.message());
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const auto& item : module.named_parameters()) {
    at::Tensor t = item.value().detach().to(at::kCPU, at::kFloat).contiguous();
    writer.add_floats_as(item.key(), dtype, t.sizes().vec(),
                         std::span<const float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
  }
  nlohmann::json written = config;
  written["torch_dtype"] = torch_dtype;  // what Hugging Face loads the weights as
  io::write_json_file_atomic(dir / "config.json", written);
  writer.write(dir / "model.safetensors");
}

}  // namespace gaggle::model::detail
