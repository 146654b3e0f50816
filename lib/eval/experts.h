#pragma once
// The experts an evaluation routes among (design.md §2, §4): expert bundles read from
// their directories or from a pool, stacked per module so that every router can be
// assembled in memory from one load.
//
// An expert directory holds adapter.safetensors with, per LoRA module,
// "<module>.lora_A" [r, d_in] and "<module>.lora_B" [d_out, r], and after train-gate
// "<module>.gate" [d_in], "<module>.avg_act" [d_in] and "retrieval_embeddings"
// [n, d_model]; manifest.json names it and binds it to a base fingerprint.
// A pool directory holds pool.json (hub, commit, bundles with their signers) and
// bundles/<name>/<version>/; a directory without pool.json is read as a plain folder of
// expert directories (every sub-directory holding adapter.safetensors, sorted).
#include <ATen/core/Tensor.h>

#include "bundle/lora_scaling.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace gaggle::eval {

inline constexpr const char* kAdapterFile = "adapter.safetensors";
inline constexpr const char* kRetrievalEmbeddingsTensor = "retrieval_embeddings";

struct ExpertInfo {
  std::string name;     // manifest name (the directory name without a manifest)
  std::string version;  // manifest version, or ""
  std::filesystem::path dir;
  std::string base_fingerprint;  // from the manifest, or "" without one
  std::string signer;            // the pool's verified principal, or "" outside a pool
  std::string key_fingerprint;   // the signer's key ("SHA256:..."), or ""
  bundle::LoraScaling scaling;   // per-module LoRA scale (manifest; alpha 1 without one)
};

// "name@version", or the name alone for an expert without a version.
std::string label_of(const ExpertInfo& e);

struct PoolInfo {
  std::filesystem::path dir;
  std::string hub;     // from pool.json, or ""
  std::string commit;  // from pool.json, or ""
  std::vector<ExpertInfo> experts;  // sorted by name, then version
};

// Reads an expert directory's identity (manifest.json when present). Throws
// Error{not_found} when the directory has no adapter.safetensors.
ExpertInfo describe_expert(const std::filesystem::path& dir);

// Reads a pool directory (see above). Throws Error{not_found} for a missing directory or
// one without experts, Error{invalid} for a malformed pool.json (naming the field).
// A pool (with pool.json) is verified first, as every verb that loads a pool does
// (hub/pool_trust.h): against `trust_file`, or the trust file the pool was pulled with;
// a bundle that does not verify is an Error{auth|mismatch} naming it. Signers come from
// that verification, not from pool.json. A plain folder of expert directories is the
// user's own work and is read as it is.
PoolInfo read_pool_dir(const std::filesystem::path& dir, const std::filesystem::path& trust_file = {});

// N experts stacked per module (the modules every expert has; a module some expert lacks
// is an Error{mismatch} naming the expert and the module).
struct ExpertStack {
  std::vector<ExpertInfo> experts;
  std::vector<std::string> modules;       // sorted module paths
  std::map<std::string, at::Tensor> A;    // [N, r, d_in]
  // [N, d_out, r], pre-multiplied by each expert's scale(module) · r, so that the routers'
  // 1 / r makes it the expert's own scale (bundle/lora_scaling.h)
  std::map<std::string, at::Tensor> B;
  std::map<std::string, at::Tensor> gates;    // [N, d_in], only when every expert has them
  std::map<std::string, at::Tensor> avg_act;  // [N, d_in], only when every expert has them
  std::vector<at::Tensor> retrieval;          // per expert [n, d_model]; empty unless all have them
  std::string missing_gate;        // "" or "expert 'x' has no 'm.gate'" (why gates is empty)
  std::string missing_avg_act;     // likewise for avg_act
  std::string missing_retrieval;   // likewise for retrieval_embeddings
  std::int64_t rank = 0;
};

// Loads and stacks the experts' adapters. When base_fingerprint is not empty, an expert
// whose manifest names another base is refused (Error{mismatch}, naming the expert).
// Shapes are checked (Error{invalid} naming the file and tensor).
ExpertStack load_experts(const std::vector<ExpertInfo>& experts, const std::string& base_fingerprint);

}  // namespace gaggle::eval
