#include "train/detail/model_ops.h"

#include <torch/torch.h>

#include <algorithm>

#include "io/error.h"
#include "model/scoring.h"
#include "train/detail/room.h"

namespace gaggle::train::detail {
namespace {

struct Rows {
  model::TokenRows inputs, targets;
};

Rows make(const TokenizedData& data, const std::vector<int64_t>& indices) {
  Rows r;
  r.inputs.reserve(indices.size());
  r.targets.reserve(indices.size());
  for (auto i : indices) {
    r.inputs.push_back(data.examples[static_cast<size_t>(i)].input);
    r.targets.push_back(data.examples[static_cast<size_t>(i)].target);
  }
  return r;
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

MicroBatchLoss batch_nll(model::BaseModel& model, const TokenizedData& data, const std::vector<int64_t>& indices) {
  auto rows = make(data, indices);
  auto nll = model.target_nll(rows.inputs, rows.targets);
  MicroBatchLoss out;
  out.nll_sum = nll.sum();
  for (const auto& in : rows.inputs) out.tokens += static_cast<int64_t>(in.size());
  out.tokens += target_tokens(data, indices);
  return out;
}

ValidResult validate(model::BaseModel& model, const TokenizedData& data, int64_t batch_size) {
  ValidResult r;
  if (data.examples.empty()) return r;
  torch::NoGradGuard no_grad;
  double nll = 0;
  int64_t tokens = 0;
  auto indices = all_indices(data);
  for (const auto& c : chunks(indices, batch_size)) {
    nll += batch_nll(model, data, c).nll_sum.item<double>();
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
    auto pred = model::rank_predictions(model::rank_classification_nll(model, inputs, choices, {}));
    int64_t right = 0;
    for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == data.examples[i].label;
    r.accuracy = static_cast<double>(right) / static_cast<double>(pred.size());
  }
  return r;
}

peft::LoraSet make_lora(model::BaseModel& model, const std::string& targets, const peft::LoraOptions& options) {
  std::vector<std::pair<std::string, peft::LinearShape>> modules;
  for (const auto& name : peft::select_targets(model.linear_names(), targets)) {
    auto w = model.linear_weight(name);
    modules.push_back({name, {w.size(1), w.size(0)}});
  }
  return peft::LoraSet(modules, options);
}

peft::LoraSet lora_for_tensors(model::BaseModel& model, const std::map<std::string, at::Tensor>& tensors,
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

void attach(model::BaseModel& model, peft::LoraSet& lora) {
  lora.to(model.device().str());
  for (auto& [name, m] : lora.modules()) model.set_adapter(name, m.ptr());
}

std::map<std::string, at::Tensor> average_activations(model::BaseModel& model, peft::LoraSet& lora,
                                                      const TokenizedData& data, const std::vector<int64_t>& indices,
                                                      int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::map<std::string, peft::ActivationSum> sums;
  std::vector<at::Tensor> masks;  // this batch's, by BaseModel::row_mask_of
  std::vector<std::size_t> mask_of;
  for (auto& [name, m] : lora.modules()) mask_of.push_back(model.row_mask_of(name));
  auto stop = [&] {
    for (auto& [name, m] : lora.modules()) m->record_activations(nullptr, nullptr);
  };
  try {
    for (const auto& c : chunks(indices, batch_size)) {
      auto rows = make(data, c);
      masks = model.row_masks(rows.inputs, rows.targets);
      std::size_t k = 0;
      for (auto& [name, m] : lora.modules()) {
        const std::size_t which = mask_of[k++];
        if (which >= masks.size())
          throw_error(ErrorCode::invalid, kRoom, "internal: no row mask " + std::to_string(which) + " for '" + name + "'");
        m->record_activations(&sums[name], &masks[which]);
      }
      model.target_nll(rows.inputs, rows.targets);
    }
  } catch (...) {
    stop();
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

at::Tensor prompt_embeddings(model::BaseModel& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                             int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (const auto& c : chunks(indices, batch_size)) parts.push_back(model.prompt_embeddings(make(data, c).inputs).cpu());
  if (parts.empty()) return torch::zeros({0, model.hidden_size()});
  return torch::cat(parts, 0).contiguous();
}

}  // namespace gaggle::train::detail
