#include "train/detail/model_ops.h"

#include <torch/torch.h>

#include <algorithm>

#include "io/error.h"
#include "model/scoring.h"

namespace gaggle::train::detail {
namespace {

constexpr const char* kRoom = "train";

model::Batch make(const TokenizedData& data, const std::vector<int64_t>& indices, int64_t pad_id) {
  std::vector<std::vector<int64_t>> inputs, targets;
  inputs.reserve(indices.size());
  targets.reserve(indices.size());
  for (auto i : indices) {
    inputs.push_back(data.examples[static_cast<size_t>(i)].input);
    targets.push_back(data.examples[static_cast<size_t>(i)].target);
  }
  return model::make_batch(inputs, targets, pad_id);
}

std::vector<std::vector<int64_t>> chunks(const std::vector<int64_t>& indices, int64_t size) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < indices.size(); i += static_cast<size_t>(size))
    out.emplace_back(indices.begin() + static_cast<std::ptrdiff_t>(i),
                     indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), i + static_cast<size_t>(size))));
  return out;
}

std::vector<int64_t> all_indices(const TokenizedData& data) {
  std::vector<int64_t> v(data.examples.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
  return v;
}

}  // namespace

int64_t target_tokens(const TokenizedData& data, const std::vector<int64_t>& indices) {
  int64_t n = 0;
  for (auto i : indices) n += static_cast<int64_t>(data.examples[static_cast<size_t>(i)].target.size());
  return n;
}

MicroBatchLoss batch_nll(model::T5ModelImpl& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                         int64_t pad_id) {
  auto batch = make(data, indices, pad_id);
  auto nll = model.token_nll(batch.input_ids, batch.attention_mask, batch.labels);
  MicroBatchLoss out;
  out.nll_sum = nll.sum();
  out.tokens = batch.attention_mask.sum().item<int64_t>() + target_tokens(data, indices);
  return out;
}

ValidResult validate(model::T5ModelImpl& model, const TokenizedData& data, int64_t batch_size, int64_t pad_id) {
  ValidResult r;
  if (data.examples.empty()) return r;
  torch::NoGradGuard no_grad;
  double nll = 0;
  int64_t tokens = 0;
  auto indices = all_indices(data);
  for (const auto& c : chunks(indices, batch_size)) {
    nll += batch_nll(model, data, c, pad_id).nll_sum.item<double>();
    tokens += target_tokens(data, c);
  }
  r.loss = nll / static_cast<double>(std::max<int64_t>(tokens, 1));
  if (data.has_choices) {
    std::vector<std::vector<int64_t>> inputs;
    std::vector<std::vector<std::vector<int64_t>>> choices;
    for (const auto& e : data.examples) {
      inputs.push_back(e.input);
      choices.push_back(e.choices);
    }
    auto pred = model::rank_predictions(model::rank_classification_nll(model, inputs, choices));
    int64_t right = 0;
    for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == data.examples[i].label;
    r.accuracy = static_cast<double>(right) / static_cast<double>(pred.size());
  }
  return r;
}

peft::LoraSet make_lora(model::T5ModelImpl& model, const std::string& targets, const peft::LoraOptions& options) {
  std::vector<std::pair<std::string, peft::LinearShape>> modules;
  for (const auto& name : peft::select_targets(model.linear_names(), targets)) {
    auto w = model.linear_weight(name);
    modules.push_back({name, {w.size(1), w.size(0)}});
  }
  return peft::LoraSet(modules, options);
}

peft::LoraSet lora_for_tensors(model::T5ModelImpl& model, const std::map<std::string, at::Tensor>& tensors,
                               const bundle::LoraScaling& scaling, const std::string& source) {
  auto names = model.linear_names();
  std::vector<peft::LoraSet::ModuleSpec> modules;
  for (const auto& name : peft::modules_in(tensors)) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw_error(ErrorCode::mismatch, kRoom, source + ": module '" + name + "' is not a linear layer of the base model",
                  "the expert was trained on another base model");
    auto w = model.linear_weight(name);
    const auto& a = tensors.at(name + ".lora_A");
    peft::LoraOptions opts;
    opts.rank = a.size(0);
    // LoraAdapter scales by alpha / rank: the alpha that gives this module its scale.
    opts.alpha = scaling.scale(name, opts.rank) * static_cast<double>(opts.rank);
    modules.push_back({name, {w.size(1), w.size(0)}, opts});
  }
  if (modules.empty())
    throw_error(ErrorCode::invalid, kRoom, source + ": no '<module>.lora_A' tensors", "is this an expert bundle?");
  peft::LoraSet set(modules);
  set.import_tensors(tensors, source);
  return set;
}

void attach(model::T5ModelImpl& model, peft::LoraSet& lora) {
  lora.to(model.device().str());
  for (auto& [name, m] : lora.modules()) model.set_adapter(name, m.ptr());
}

std::map<std::string, at::Tensor> average_activations(model::T5ModelImpl& model, peft::LoraSet& lora,
                                                      const TokenizedData& data, const std::vector<int64_t>& indices,
                                                      int64_t batch_size, int64_t pad_id) {
  torch::NoGradGuard no_grad;
  std::map<std::string, peft::ActivationSum> sums;
  at::Tensor encoder_mask, decoder_mask;
  for (auto& [name, m] : lora.modules()) {
    // Encoder modules and the cross-attention keys/values read encoder positions.
    bool is_encoder = name.rfind("encoder.", 0) == 0 || name.find("EncDecAttention.k") != std::string::npos ||
                      name.find("EncDecAttention.v") != std::string::npos;
    m->record_activations(&sums[name], is_encoder ? &encoder_mask : &decoder_mask);
  }
  try {
    for (const auto& c : chunks(indices, batch_size)) {
      auto batch = make(data, c, pad_id);
      encoder_mask = batch.attention_mask;
      decoder_mask = batch.labels.ne(-100);
      model.token_nll(batch.input_ids, batch.attention_mask, batch.labels);
    }
  } catch (...) {
    for (auto& [name, m] : lora.modules()) m->record_activations(nullptr, nullptr);
    throw;
  }
  std::map<std::string, at::Tensor> out;
  for (auto& [name, m] : lora.modules()) {
    m->record_activations(nullptr, nullptr);
    const auto& s = sums[name];
    if (s.examples > 0) out[name] = s.sum / static_cast<double>(s.examples);
  }
  return out;
}

at::Tensor encoder_embeddings(model::T5ModelImpl& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                              int64_t batch_size, int64_t pad_id) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (const auto& c : chunks(indices, batch_size)) {
    auto batch = make(data, c, pad_id);
    auto hidden = model.encode(batch.input_ids, batch.attention_mask);  // [B,S,d]
    auto m = batch.attention_mask.to(hidden.device(), torch::kFloat32).unsqueeze(-1);
    parts.push_back(((hidden * m).sum(1) / m.sum(1).clamp_min(1.0)).cpu());
  }
  if (parts.empty()) return torch::zeros({0, model.config().d_model});
  return torch::cat(parts, 0).contiguous();
}

}  // namespace gaggle::train::detail
