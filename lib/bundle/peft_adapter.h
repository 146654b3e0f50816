#pragma once
// Hugging Face PEFT LoRA adapters in and out of gaggle bundles (docs/peft.md).
//
// A PEFT adapter directory holds adapter_config.json and adapter_model.safetensors whose
// tensors are named "base_model.model.<module path>.lora_A.weight" [r, d_in] and
// ".lora_B.weight" [d_out, r]. The module paths are the base's Hugging Face module paths,
// which are gaggle's too, so a LoRA pair maps one to one onto "<module>.lora_A" /
// "<module>.lora_B" of adapter.safetensors. PEFT's scaling (lora_alpha / r, or
// / sqrt(r) with use_rslora; rank_pattern and alpha_pattern per module) is resolved at
// import into the manifest's LoRA scaling (bundle/lora_scaling.h), so every gaggle verb
// computes what PEFT computes.
//
// What a plain LoRA expert cannot hold is refused, never approximated: DoRA, trained
// biases, modules_to_save (a changed head), embedding LoRA, layers_to_transform, pickled
// (.bin) weights, and any configuration field gaggle does not know that is set.
//
// Export writes a directory PEFT's PeftModel.from_pretrained loads unchanged; the gates,
// average activations and retrieval embeddings go into gaggle_routing.safetensors, a
// file PEFT ignores (and import reads back). Tensors keep the dtype they were imported
// with, so import then export is tensor-for-tensor identical.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::bundle {

inline constexpr const char* kPeftConfigFile = "adapter_config.json";
inline constexpr const char* kPeftWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kPeftPickleFile = "adapter_model.bin";
inline constexpr const char* kPeftRoutingFile = "gaggle_routing.safetensors";

// One linear layer of the base (never the LM head).
struct BaseLinear {
  std::string name;  // Hugging Face module path
  std::int64_t d_in = 0, d_out = 0;
};

struct PeftImportOptions {
  std::filesystem::path adapter_dir;
  std::vector<BaseLinear> linears;  // the base's linear layers, in model order
  std::string task_type;            // what the base needs: "SEQ_2_SEQ_LM" (T5) or "CAUSAL_LM" (Llama)
  std::string base_fingerprint;     // "sha256:..." of the base
  std::string name, version;        // the bundle's
  std::filesystem::path out_dir;    // the bundle directory to write
  bool force = false;               // replace an existing out_dir
  std::string license, description;
};

struct PeftImportResult {
  std::int64_t modules = 0;
  std::int64_t rank = 0;            // the config's r
  bool per_module_ranks = false;    // rank_pattern in use
  bool per_module_alphas = false;   // alpha_pattern in use
  bool use_rslora = false;
  bool has_gates = false;           // gaggle_routing.safetensors brought gates along
  std::string dtype;                // the adapter's tensor dtype(s), "F16" or "BF16+F32"
  std::vector<std::string> warnings;  // things honoured differently than written (fan_in_fan_out on a Linear)
};

// Reads, checks and writes the bundle (atomically; the bundle is unsigned, like
// train-expert's). Throws Error{not_found} (no adapter files), Error{unsupported} (what
// a LoRA bundle cannot hold, a pickle), Error{invalid} (malformed config or tensors,
// naming the file and the field or tensor), Error{mismatch} (made for another base:
// unknown module, wrong width, other task type), Error{exists} (out_dir without force).
PeftImportResult import_peft(const PeftImportOptions& options);

struct PeftExportOptions {
  std::filesystem::path bundle_dir;
  std::filesystem::path out_dir;
  std::string base_model;  // base_model_name_or_path; "" = the manifest's ("base_model" or the imported config's)
  bool force = false;
};

struct PeftExportResult {
  std::int64_t modules = 0;
  std::int64_t rank = 0;
  std::string task_type;
  bool wrote_routing = false;  // gaggle_routing.safetensors written
};

// Writes adapter_config.json, adapter_model.safetensors and, when the bundle has gates
// or keys, gaggle_routing.safetensors into out_dir (atomically). The bundle's files are
// checked against its manifest first (Error{mismatch} for a changed file).
PeftExportResult export_peft(const PeftExportOptions& options);

}  // namespace gaggle::bundle
