#include "peft/lora.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

#include "io/error.h"
#include "io/safetensors.h"

namespace gaggle::peft {
namespace {

constexpr const char* kRoom = "peft";

bool ends_with_component(const std::string& name, const std::string& suffix) {
  if (suffix.empty() || suffix.size() > name.size()) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  return suffix.size() == name.size() || name[name.size() - suffix.size() - 1] == '.';
}

std::string shape_text(const at::Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? ", " : "") << t.size(i);
  s << "]";
  return s.str();
}

}  // namespace

LoraAdapterImpl::LoraAdapterImpl(int64_t d_in, int64_t d_out, const LoraOptions& options)
    : d_in_(d_in), d_out_(d_out), options_(options) {
  if (options.rank <= 0) throw_error(ErrorCode::usage, kRoom, "LoRA rank must be positive", "use --rank 16");
  torch::NoGradGuard no_grad;
  lora_a = register_parameter("lora_A", torch::randn({options.rank, d_in}) * options.init_std);
  lora_b = register_parameter("lora_B", torch::zeros({d_out, options.rank}));
}

void LoraAdapterImpl::set_mode(LoraMode mode) {
  mode_ = mode;
  if (mode == LoraMode::gate && !gate.defined())
    gate = register_parameter("gate", torch::zeros({d_in_}, lora_a.options().requires_grad(false)));
  lora_a.set_requires_grad(mode == LoraMode::expert);
  lora_b.set_requires_grad(mode == LoraMode::expert);
  if (gate.defined()) gate.set_requires_grad(mode == LoraMode::gate);
}

at::Tensor LoraAdapterImpl::apply(const at::Tensor& u, const at::Tensor& base_out) {
  if (recorder_) {
    torch::NoGradGuard no_grad;
    auto uf = u.detach().to(torch::kFloat32);
    at::Tensor per_example;  // [B, d_in]
    if (uf.dim() == 3) {
      const at::Tensor* mask = recorder_mask_;
      if (mask && mask->defined()) {
        auto m = mask->to(uf.device(), torch::kFloat32).unsqueeze(-1);  // [B, L, 1]
        per_example = (uf * m).sum(1) / m.sum(1).clamp_min(1.0);
      } else {
        per_example = uf.mean(1);
      }
    } else {
      per_example = uf.reshape({-1, d_in_});
    }
    auto s = per_example.sum(0).cpu();
    if (!recorder_->sum.defined())
      recorder_->sum = s;
    else
      recorder_->sum += s;
    recorder_->examples += per_example.size(0);
  }
  auto update = torch::matmul(torch::matmul(u, lora_a.t()), lora_b.t()) * scale();
  if (mode_ == LoraMode::gate) {
    auto g = torch::sigmoid(torch::matmul(u, gate)).unsqueeze(-1);
    update = update * g;
  }
  return base_out + update;
}

std::vector<std::string> select_targets(const std::vector<std::string>& linear_names, const std::string& targets) {
  std::vector<std::string> out;
  std::string spec = targets.empty() ? "all" : targets;
  auto is_head = [](const std::string& n) { return n == "lm_head"; };
  if (spec == "all") {
    // Every linear the model lists (its linear_names: T5's attention and feed-forward
    // layers, Llama's q/k/v/o and gate/up/down), never the LM head.
    for (const auto& n : linear_names)
      if (!is_head(n)) out.push_back(n);
  } else if (spec.rfind("re:", 0) == 0) {
    std::regex pattern;
    try {
      pattern = std::regex(spec.substr(3));
    } catch (const std::regex_error& e) {
      throw_error(ErrorCode::usage, kRoom, "--targets: invalid regular expression '" + spec.substr(3) + "': " + e.what());
    }
    for (const auto& n : linear_names)
      if (!is_head(n) && std::regex_match(n, pattern)) out.push_back(n);
  } else {
    std::vector<std::string> suffixes;
    std::stringstream ss(spec);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) suffixes.push_back(item);
    for (const auto& n : linear_names) {
      if (is_head(n)) continue;
      for (const auto& s : suffixes)
        if (ends_with_component(n, s)) {
          out.push_back(n);
          break;
        }
    }
  }
  if (out.empty())
    throw_error(ErrorCode::usage, kRoom, "--targets '" + spec + "' selects no linear layer of the model",
                "use 'all', suffixes like 'q,v,wo', or 're:<regex>' over paths like "
                "'encoder.block.0.layer.0.SelfAttention.q'");
  return out;
}

LoraSet::LoraSet(const std::vector<std::pair<std::string, LinearShape>>& modules, const LoraOptions& options)
    : options_(options) {
  for (const auto& [name, shape] : modules) {
    if (modules_.count(name)) throw_error(ErrorCode::invalid, kRoom, "module '" + name + "' listed twice");
    modules_.emplace(name, LoraAdapter(shape.d_in, shape.d_out, options));
    order_.push_back(name);
  }
}

LoraSet::LoraSet(const std::vector<ModuleSpec>& modules) {
  if (!modules.empty()) options_ = modules.front().options;
  for (const auto& m : modules) {
    if (modules_.count(m.name)) throw_error(ErrorCode::invalid, kRoom, "module '" + m.name + "' listed twice");
    modules_.emplace(m.name, LoraAdapter(m.shape.d_in, m.shape.d_out, m.options));
    order_.push_back(m.name);
  }
}

LoraAdapter& LoraSet::at(const std::string& module) {
  auto it = modules_.find(module);
  if (it == modules_.end()) throw_error(ErrorCode::not_found, kRoom, "no LoRA module '" + module + "'");
  return it->second;
}

void LoraSet::set_mode(LoraMode mode) {
  for (auto& [name, m] : modules_) m->set_mode(mode);
}

std::vector<at::Tensor> LoraSet::trainable_parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& name : order_) {
    const auto& m = modules_.at(name);
    for (const auto& p : m->parameters())
      if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

std::map<std::string, at::Tensor> LoraSet::trainable_named() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& name : order_)
    for (const auto& p : modules_.at(name)->named_parameters())
      if (p.value().requires_grad()) out[name + "." + p.key()] = p.value();
  return out;
}

void LoraSet::to(const std::string& device) {
  for (auto& [name, m] : modules_) m->to(torch::Device(device));
}

std::map<std::string, at::Tensor> LoraSet::export_tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, m] : modules_) {
    out[name + ".lora_A"] = m->lora_a.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    out[name + ".lora_B"] = m->lora_b.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    if (m->gate.defined()) out[name + ".gate"] = m->gate.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  }
  for (const auto& [name, t] : avg_act) out[name + ".avg_act"] = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return out;
}

void LoraSet::import_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto check = [&](const std::string& key, const at::Tensor& t, std::vector<int64_t> shape) {
    if (t.sizes().vec() != shape) {
      std::ostringstream want;
      want << "[";
      for (size_t i = 0; i < shape.size(); ++i) want << (i ? ", " : "") << shape[i];
      want << "]";
      throw_error(ErrorCode::mismatch, kRoom,
                  source + ": tensor '" + key + "' has shape " + shape_text(t) + ", expected " + want.str(),
                  "the expert was trained with another rank or on another base model");
    }
  };
  for (const auto& [key, t] : tensors) {
    auto dot = key.rfind('.');
    if (dot == std::string::npos) continue;
    std::string module = key.substr(0, dot), field = key.substr(dot + 1);
    if (field != "lora_A" && field != "lora_B" && field != "gate" && field != "avg_act") continue;
    auto it = modules_.find(module);
    if (it == modules_.end())
      throw_error(ErrorCode::mismatch, kRoom, source + ": tensor '" + key + "' is for module '" + module +
                                                  "', which this model has no LoRA on",
                  "train and load the expert with the same --targets and base model");
    auto& m = it->second;
    if (field == "lora_A") {
      check(key, t, {m->rank(), m->d_in()});
      m->lora_a.copy_(t);
    } else if (field == "lora_B") {
      check(key, t, {m->d_out(), m->rank()});
      m->lora_b.copy_(t);
    } else if (field == "gate") {
      check(key, t, {m->d_in()});
      if (!m->gate.defined()) {
        auto mode = m->mode();
        m->set_mode(LoraMode::gate);
        m->set_mode(mode);
      }
      m->gate.copy_(t);
    } else {
      check(key, t, {m->d_in()});
      avg_act[module] = t.to(torch::kCPU, torch::kFloat32).clone();
    }
  }
  for (const auto& name : order_)
    if (!tensors.count(name + ".lora_A") || !tensors.count(name + ".lora_B"))
      throw_error(ErrorCode::mismatch, kRoom, source + ": no LoRA tensors for module '" + name + "'",
                  "the expert was trained with other --targets");
}

std::vector<std::string> modules_in(const std::map<std::string, at::Tensor>& tensors) {
  std::vector<std::string> out;
  const std::string suffix = ".lora_A";
  for (const auto& [key, t] : tensors)
    if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(key.substr(0, key.size() - suffix.size()));
  return out;
}

void write_tensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  io::SafetensorsWriter writer;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    writer.add_f32(name, c.sizes().vec(), std::span<const float>(c.data_ptr<float>(), static_cast<size_t>(c.numel())));
  }
  for (const auto& [k, v] : metadata) writer.set_metadata(k, v);
  writer.write(path);
}

std::map<std::string, at::Tensor> read_tensors(const std::filesystem::path& path) {
  auto file = io::SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& info : file.tensors()) {
    if (info.dtype != io::DType::F32)
      throw_error(ErrorCode::unsupported, kRoom,
                  path.string() + ": tensor '" + info.name + "' is " + std::string(io::dtype_name(info.dtype)) +
                      ", expected F32");
    auto bytes = file.data(info);
    auto t = torch::empty(info.shape, torch::kFloat32);
    if (!bytes.empty()) std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
    out[info.name] = t;
  }
  return out;
}

}  // namespace gaggle::peft
