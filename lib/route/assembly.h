#pragma once
// Assembly (issue #7, item 1): base + verified bundles + a router -> a routed model
// directory (design.md §4, schema manifests/assembly.schema.json):
//
//   MODEL_DIR/assembly.json                   base fingerprint, router, k, experts (signers,
//                                             files) and modules
//   MODEL_DIR/experts/<name>@<version>.safetensors
//                                             one expert's factors for every module:
//                                             "<module>.A" [r, d_in], "<module>.B" [d_out, r]
//   MODEL_DIR/modules/<module>.safetensors    "<module>.keys" [N, d_in] (per-token routers,
//                                             smear; no tensor for the others)
//   MODEL_DIR/retrieval.safetensors           retrieval only: "embeddings" [M, d_model], every
//                                             bundle's "retrieval_embeddings" stacked, rows
//                                             L2-normalised; "expert" [M] int64, each row's expert
//
// Format 3 (written now) keeps each expert in a file of its own: loading maps only those
// files, the routed layer reads only the experts tokens chose, and an update hard-links
// the files of experts it keeps instead of rewriting them. Formats 1 and 2 (read still)
// stacked every expert's factors in the module files ("<module>.A" [N, r, d_in],
// "<module>.B" [N, d_out, r]); 2 marked the routers a version-1 reader would misread.
//
// Every bundle is verified first (signature, trusted signer, files) and must be bound to
// the base's fingerprint: a mismatch is an error naming the bundle. Experts of different
// ranks are zero-padded to the largest r (exact: the padding adds nothing), and each
// expert's alpha/r is folded into its B, so the stored update is Σ w · B A u with
// lora_scale 1. Keys are prepared once here: PHATGOOSE gates and average activations
// layer-normalised, Arrow vectors computed from A and B. The directory is written
// atomically. Torch is needed; the pool is read by the caller (cmd/), so this room
// stays free of the hub.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "io/dtype.h"
#include "route/router.h"

namespace gaggle::route {

inline constexpr int kAssemblyFormatVersion = 3;  // the newest this gaggle reads and writes
inline constexpr const char* kAssemblyFile = "assembly.json";

struct ExpertSource {
  std::string name, version;
  std::filesystem::path dir;  // the bundle directory
  // Set when the caller has verified the bundle already (hub::verify_pool, whose cache
  // makes that cheap): assemble then records this signer and does not verify again.
  bool verified = false;
  std::string principal, key_fingerprint;
};

struct AssembleOptions {
  std::filesystem::path base_dir;    // Hugging Face checkpoint (T5 or Llama)
  std::vector<ExpertSource> experts;  // in routing order; single: exactly one
  std::filesystem::path trust_file;  // OpenSSH allowed signers the unverified sources are verified against
  std::filesystem::path out_dir;
  RouterKind router = RouterKind::phatgoose;
  int top_k = 2;
  // Sub-linear routing (route/ivf_index.h; phatgoose and average-activation): an IVF index
  // over each module's keys, stored in the module files. clusters 0: round(sqrt(N));
  // probe 0: a quarter of the clusters (at least 1). probe_margin: clusters after a token's
  // best are probed only within this logit gap of its centroid score (ivf_index.h;
  // kNoProbeMargin: all `probe` of them).
  bool ivf = false;
  std::int64_t clusters = 0, probe = 0;
  double probe_margin = std::numeric_limits<double>::infinity();  // route::kNoProbeMargin
  // How the experts' factors are stored: F32, or BF16 (half the bytes a large pool streams
  // per routed forward; each weight rounded to nearest even, the arithmetic stays F32).
  io::DType factor_dtype = io::DType::F32;
  bool force = false;  // replace an existing out_dir
  std::function<void(const std::string&)> progress;
};

// A routed model's IVF index (assembly.json /index; tensors "<module>.ivf_centroids"
// [C, d_in], ".ivf_members" [N] and ".ivf_offsets" [C + 1] in the module files).
struct AssemblyIndex {
  std::string kind;  // "" (exact routing) or "ivf"
  std::int64_t clusters = 0, probe = 0;
  double probe_margin = std::numeric_limits<double>::infinity();  // stored only when finite
  // Not stored: measured when made, over the queries at hand (the added experts' average
  // activations, their held-in data's mean input to each module): the share of them, over
  // every module, whose top-k through the index is the exact top-k; -1 when none.
  double recall = -1;
  // Not stored, measured on the same queries: the clusters each probed on average (below
  // `probe` where a probe margin skips some), and the experts it scored.
  double clusters_per_query = -1, candidates_per_query = -1;
};

struct AssemblyExpert {
  std::string name, version, principal, key_fingerprint, manifest_sha256;
  std::int64_t rank = 0;
  double lora_scale = 0;  // alpha / r, folded into the stored B
  std::string file;       // format 3: "experts/<name>@<version>.safetensors", its factors for every module
};

struct AssemblyModule {
  std::string name, file;  // file relative to the model directory
  std::int64_t d_in = 0, d_out = 0, rank = 0;
};

struct AssemblyRetrieval {
  std::string file;  // relative to the model directory ("retrieval.safetensors"); "" unless retrieval
  std::int64_t rows = 0, d_model = 0;
};

struct Assembly {
  int format_version = kAssemblyFormatVersion;
  std::string base_fingerprint;
  std::string base_dir;  // where the base was at assembly (a default for loading)
  RouterKind router = RouterKind::phatgoose;
  int top_k = 2;
  std::vector<AssemblyExpert> experts;
  std::vector<AssemblyModule> modules;
  AssemblyRetrieval retrieval;  // router retrieval
  AssemblyIndex index;
  io::DType factor_dtype = io::DType::F32;  // /factor_dtype (format 3; absent: F32)
};

// The format version an assembly with this router is written as (see above).
int assembly_format_version(RouterKind router);

// Throws Error{usage} (k out of range, no experts), Error{auth|mismatch|invalid|not_found}
// from verification (prefixed "bundle 'name/version'"), Error{mismatch} for a bundle bound
// to another base, Error{invalid} for missing or ill-shaped tensors (naming bundle, file
// and tensor; a bundle without the gates phatgoose/smear need, the average activations
// average-activation needs or the retrieval embeddings retrieval needs is named, with
// the hint to run train-gate), Error{exists} when out_dir exists and !force.
Assembly assemble(const AssembleOptions& options);

// Incremental assembly (issue #16): brings the routed model in `model_dir` up to date
// with `experts` (the pool as it is now, in routing order), in place and atomically,
// keeping its router and k. Experts whose manifest (name, version, sha256) the model
// already holds keep their rows, copied from its files; only added experts are read
// from their bundles; removed ones are dropped. The result is byte-identical to a fresh
// assemble() of the same experts. When the largest rank changes every row is restacked
// from the bundles; when nothing changed nothing is written.
struct UpdateOptions {
  std::filesystem::path model_dir;
  std::filesystem::path base_dir;  // default: the base recorded in the model (its fingerprint must match)
  std::vector<ExpertSource> experts;
  std::filesystem::path trust_file;  // for sources not verified by the caller
  // An IVF index is rebuilt over the new keys with the model's clusters and probe; -1 keeps
  // them, 0 picks them afresh for the new N (as assemble's defaults do).
  std::int64_t clusters = -1;
  std::function<void(const std::string&)> progress;
};

struct UpdateReport {
  Assembly assembly;
  std::vector<std::string> added, removed;  // NAME@VERSION
  std::size_t kept = 0;
  bool unchanged = false;  // nothing written
  bool restacked = false;  // every row recomputed (the largest rank changed)
};

// Throws what assemble() throws, Error{not_found|invalid} for a model_dir that is not a
// routed model, Error{mismatch} for another base.
UpdateReport update_assembly(const UpdateOptions& options);

nlohmann::json assembly_to_json(const Assembly& assembly);
// Reads and validates MODEL_DIR/assembly.json (schema, format version, router, files).
Assembly read_assembly(const std::filesystem::path& model_dir);

}  // namespace gaggle::route
