#pragma once
// How an expert's LoRA update is scaled, module by module (design.md §2):
//
//   out = W u + B A u · scale(module),   scale = alpha_m / r_m   (alpha_m / sqrt(r_m) with rsLoRA)
//
// r_m is the module's rank (lora_A's first dimension). An expert trained by gaggle has one
// alpha for every module (manifest hyperparameters.lora_alpha, 1 when absent). An adapter
// imported from PEFT may also use rsLoRA or give some modules their own alpha
// (PEFT's alpha_pattern, resolved per module at import): the manifest then carries
//
//   "lora": {"use_rslora": true|false, "alpha_by_module": {"<module path>": alpha, ...}}
//
// Every reader of an expert (train-gate, eval, assemble, export-peft) scales through
// this one rule, so an imported adapter computes what PEFT computes.
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace gaggle::bundle {

struct LoraScaling {
  double alpha = 1.0;      // hyperparameters.lora_alpha
  bool use_rslora = false;  // scale by alpha / sqrt(r) instead of alpha / r
  std::map<std::string, double> alpha_by_module;  // modules whose alpha is not `alpha`

  double alpha_of(const std::string& module) const;
  double scale(const std::string& module, std::int64_t rank) const;
  // The manifest fields this scaling needs, merged into `body` (hyperparameters.lora_alpha
  // always; "lora" only when rsLoRA or per-module alphas are in use).
  void write_to(nlohmann::json& body) const;
};

// Reads the scaling from a manifest body. Throws Error{invalid} naming `source` and the
// field for a non-numeric, non-finite or non-positive alpha or a malformed "lora" object.
LoraScaling lora_scaling(const nlohmann::json& body, const std::string& source);

}  // namespace gaggle::bundle
