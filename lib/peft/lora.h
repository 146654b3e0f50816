#pragma once
// LoRA experts and their post-hoc gates (design.md §2), attached to a base model's
// linear layers through the one hook point, model::LinearAdapter.
//
//   expert training:  out = W u + (B A u) * alpha / r
//   gate training:    out = W u + sigmoid(v . u) * (B A u) * alpha / r    (A, B frozen)
//
// A [r, d_in] ~ N(0, init_std^2), B [d_out, r] = 0, v [d_in] = 0. An expert is data keyed
// by module path (LoraSet), exported to / imported from safetensors as
// `<module>.lora_A`, `<module>.lora_B`, `<module>.gate`, `<module>.avg_act`.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/linear_hook.h"

namespace gaggle::peft {

struct LoraOptions {
  int64_t rank = 16;       // r
  double alpha = 1.0;      // the update is scaled by alpha / r
  double init_std = 0.01;  // A ~ N(0, init_std^2); B = 0
};

// What the adapter does with its input besides the LoRA update.
enum class LoraMode {
  expert,  // W u + B A u * s; A and B train
  gate,    // W u + sigmoid(v . u) * B A u * s; only v trains
};

// Collects the mean input activation of one module: per example, the mean of u over
// its real (unmasked) tokens; summed over examples. The driver sets `mask` ([B, L],
// 1 for real tokens) before each forward; null mask means every token is real.
struct ActivationSum {
  at::Tensor sum;  // [d_in], float32, sum over examples of the per-example token mean
  int64_t examples = 0;
};

class LoraAdapterImpl : public torch::nn::Module, public model::LinearAdapter {
 public:
  LoraAdapterImpl(int64_t d_in, int64_t d_out, const LoraOptions& options);

  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override;

  // Switches between expert training (A, B trainable, no gate) and gate training
  // (A, B frozen, gate v trainable, created as zeros on first use).
  void set_mode(LoraMode mode);
  LoraMode mode() const { return mode_; }

  // While set, apply() adds this example-wise token mean of u into `recorder`; `mask`
  // points at the current batch's [B, L] token mask (may hold an undefined tensor).
  void record_activations(ActivationSum* recorder, const at::Tensor* mask) {
    recorder_ = recorder;
    recorder_mask_ = mask;
  }

  int64_t d_in() const { return d_in_; }
  int64_t d_out() const { return d_out_; }
  int64_t rank() const { return options_.rank; }
  double scale() const { return options_.alpha / static_cast<double>(options_.rank); }
  const LoraOptions& options() const { return options_; }

  at::Tensor lora_a;  // [r, d_in]
  at::Tensor lora_b;  // [d_out, r]
  at::Tensor gate;    // [d_in], undefined until gate mode

 private:
  int64_t d_in_, d_out_;
  LoraOptions options_;
  LoraMode mode_ = LoraMode::expert;
  ActivationSum* recorder_ = nullptr;
  const at::Tensor* recorder_mask_ = nullptr;
};
TORCH_MODULE(LoraAdapter);

// Which linear layers get LoRA. `targets` is "all" (every linear the model lists: T5's
// self-attention, cross-attention and feed-forward, encoder and decoder, the paper's
// choice; Llama's attention and MLP projections), a
// comma-separated list of module-name suffixes matched at a '.' boundary ("q,v",
// "SelfAttention.o", "wi_0"), or "re:<regex>" matched against the whole module path.
// The LM head is never a target. Throws Error{usage} for a bad regex or an empty match.
std::vector<std::string> select_targets(const std::vector<std::string>& linear_names, const std::string& targets);

struct LinearShape {
  int64_t d_in = 0;
  int64_t d_out = 0;
};

// One expert: a LoRA adapter per module path, plus what train-gate adds.
class LoraSet {
 public:
  LoraSet() = default;
  // Fresh adapters for `modules` (A drawn from torch's default generator, in the given
  // order, so a seed fixes them).
  LoraSet(const std::vector<std::pair<std::string, LinearShape>>& modules, const LoraOptions& options);
  // Adapters whose rank and alpha differ by module (an adapter imported from PEFT with
  // rank_pattern / alpha_pattern); options() is then the first module's.
  struct ModuleSpec {
    std::string name;
    LinearShape shape;
    LoraOptions options;
  };
  explicit LoraSet(const std::vector<ModuleSpec>& modules);

  const std::map<std::string, LoraAdapter>& modules() const { return modules_; }
  std::map<std::string, LoraAdapter>& modules() { return modules_; }
  LoraAdapter& at(const std::string& module);
  const std::vector<std::string>& order() const { return order_; }
  const LoraOptions& options() const { return options_; }

  void set_mode(LoraMode mode);
  // The parameters that train in the current mode, in module order.
  std::vector<at::Tensor> trainable_parameters() const;
  // Named trainable tensors ("<module>.lora_A", ...), for checkpoints.
  std::map<std::string, at::Tensor> trainable_named() const;
  void to(const std::string& device);

  // Every tensor: lora_A, lora_B, and gate / avg_act where present, on the CPU, float32.
  std::map<std::string, at::Tensor> export_tensors() const;
  // Copies matching tensors into the adapters (shapes checked, names checked:
  // `source` names the file in errors). Unknown `<module>.*` names are an Error.
  void import_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source);

  // Average input activations per module (train-gate); stored as `<module>.avg_act`.
  std::map<std::string, at::Tensor> avg_act;

 private:
  std::map<std::string, LoraAdapter> modules_;
  std::vector<std::string> order_;
  LoraOptions options_;
};

// The module paths present in a tensor map (names "<module>.lora_A").
std::vector<std::string> modules_in(const std::map<std::string, at::Tensor>& tensors);

// safetensors <-> tensor maps (float32, CPU). write is atomic.
void write_tensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata = {});
std::map<std::string, at::Tensor> read_tensors(const std::filesystem::path& path);

}  // namespace gaggle::peft
