#include "route/assembly.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "bundle/lora_scaling.h"
#include "bundle/verify.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/json_schema.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "model/fingerprint.h"
#include "model/linear_layout.h"
#include "route/arrow.h"
#include "route/average_activation.h"
#include "route/detail/room.h"
#include "route/ivf_index.h"
#include "route/phatgoose.h"
#include "route/retrieval.h"
#include "route/tensor_file.h"

namespace gaggle::route {
namespace fs = std::filesystem;
namespace {

bool per_token(RouterKind kind) {
  return kind == RouterKind::phatgoose || kind == RouterKind::arrow || kind == RouterKind::average_activation;
}

std::string label(const ExpertSource& e) { return "bundle '" + e.name + "/" + e.version + "'"; }

struct LoadedExpert {
  AssemblyExpert info;
  bundle::LoraScaling scaling;  // per-module alpha / r (bundle/lora_scaling.h)
  std::shared_ptr<const io::SafetensorsFile> adapter;  // null when the rows come from the previous assembly
  std::int64_t previous_row = -1;                      // that assembly's row of this expert, or -1
};

// The routed model an update replaces (update_assembly): its experts' rows are copied
// into the new one, not recomputed from their bundles.
struct Previous {
  fs::path dir;
  Assembly assembly;
};

// Verifies the bundle (unless the caller has: ExpertSource::verified) and opens its adapter.
LoadedExpert load_expert(const ExpertSource& source, const AssembleOptions& options, const std::string& base_fp) {
  LoadedExpert e;
  bundle::VerifyResult v;
  try {
    if (source.verified) {
      v.manifest = bundle::read_manifest(source.dir);
      v.name = v.manifest.name;
      v.version = v.manifest.version;
      v.principal = source.principal;
      v.key_fingerprint = source.key_fingerprint;
    } else {
      if (options.trust_file.empty())
        throw_error(ErrorCode::usage, kRoom, "no trust file to verify the bundle against", "pass --trust ALLOWED_SIGNERS");
      bundle::VerifyOptions verify;
      verify.trust_file = options.trust_file;
      v = bundle::verify_bundle(source.dir, verify);
    }
  } catch (const Error& err) {
    throw err.with_context(label(source));
  }
  if (v.manifest.base_fingerprint != base_fp)
    throw_error(ErrorCode::mismatch, kRoom,
                label(source) + " was trained on base " + v.manifest.base_fingerprint + ", not on " +
                    options.base_dir.string() + " (" + base_fp + ")",
                "assemble it with the base it was trained on, or leave it out with --experts");
  e.info.name = v.name;
  e.info.version = v.version;
  e.info.principal = v.principal;
  e.info.key_fingerprint = v.key_fingerprint;
  e.info.manifest_sha256 = io::sha256_hex(io::read_file(source.dir / "manifest.json"));
  e.scaling = bundle::lora_scaling(v.manifest.body, label(source) + ": manifest.json");
  fs::path adapter = source.dir / "adapter.safetensors";
  if (!v.manifest.find("adapter.safetensors"))
    throw_error(ErrorCode::invalid, kRoom, label(source) + ": the manifest lists no adapter.safetensors");
  e.adapter = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(adapter));
  std::int64_t rank = 0;
  std::string first_module;
  for (const auto& t : e.adapter->tensors()) {
    if (t.name.ends_with(".lora_A")) {
      if (t.shape.size() != 2)
        throw_error(ErrorCode::invalid, kRoom, label(source) + ": adapter.safetensors: tensor '" + t.name + "' is not 2-D");
      if (rank == 0) first_module = t.name.substr(0, t.name.size() - 7);
      rank = std::max(rank, t.shape[0]);
    }
  }
  if (rank == 0) throw_error(ErrorCode::invalid, kRoom, label(source) + ": adapter.safetensors holds no '<module>.lora_A'");
  e.info.rank = rank;
  // Informational (assembly.json): the scale of the expert's first module; the stacked B
  // carries each module's own scale.
  e.info.lora_scale = e.scaling.scale(first_module, e.adapter->at(first_module + ".lora_A").shape[0]);
  return e;
}

// The modules of one expert, in the model's order.
std::vector<std::string> modules_of(const LoadedExpert& e, const std::vector<std::string>& linear_names) {
  std::vector<std::string> out;
  for (const auto& name : linear_names)
    if (e.adapter->find(name + ".lora_A")) out.push_back(name);
  return out;
}

at::Tensor expert_tensor(const LoadedExpert& e, const std::string& name, std::vector<std::int64_t> shape,
                         const char* hint = "") {
  const io::TensorInfo* info = e.adapter->find(name);
  const std::string where = "bundle '" + e.info.name + "/" + e.info.version + "': adapter.safetensors: tensor '" + name + "'";
  if (!info) throw_error(ErrorCode::invalid, kRoom, where + " is missing", hint);
  if (info->shape != shape)
    throw_error(ErrorCode::invalid, kRoom,
                where + " has shape " + io::shape_to_string(info->shape) + ", expected " + io::shape_to_string(shape));
  return read_tensor(e.adapter, name);
}

// Every expert's retrieval embeddings, checked against the base's d_model, as one index.
RetrievalIndex retrieval_index(const std::vector<LoadedExpert>& experts, std::int64_t d_model) {
  std::vector<at::Tensor> per_expert;
  std::vector<std::string> labels;
  for (const auto& e : experts) {
    const std::string who = "bundle '" + e.info.name + "/" + e.info.version + "'";
    const io::TensorInfo* info = e.adapter->find(kRetrievalEmbeddingsTensor);
    if (!info)
      throw_error(ErrorCode::invalid, kRoom,
                  who + ": adapter.safetensors has no '" + std::string(kRetrievalEmbeddingsTensor) +
                      "': the retrieval router needs embeddings of the expert's training inputs",
                  "train-gate writes them: run 'gaggle train-gate' on the expert and publish it again");
    if (info->shape.size() != 2 || info->shape[0] < 1 || info->shape[1] != d_model)
      throw_error(ErrorCode::invalid, kRoom,
                  who + ": adapter.safetensors: tensor '" + std::string(kRetrievalEmbeddingsTensor) + "' has shape " +
                      io::shape_to_string(info->shape) + ", expected [n, " + std::to_string(d_model) + "] (d_model)",
                  "the embeddings must come from this base (train-gate computes them)");
    per_expert.push_back(read_tensor(e.adapter, kRetrievalEmbeddingsTensor));
    labels.push_back(who);
  }
  return make_retrieval_index(per_expert, labels);
}

bool needs_version_2(RouterKind kind) { return kind == RouterKind::retrieval || kind == RouterKind::smear; }

}  // namespace

int assembly_format_version(RouterKind) { return kAssemblyFormatVersion; }

namespace {

// The modules the experts adapt (each expert the same), in the model's order; an update
// whose experts all come from the previous assembly takes its list.
std::vector<std::string> common_modules(const std::vector<LoadedExpert>& experts, const AssembleOptions& options,
                                        const std::vector<std::string>& linear_names, const Previous* previous) {
  std::vector<std::string> modules;
  std::size_t first = experts.size();
  for (std::size_t i = 0; i < experts.size(); ++i)
    if (experts[i].adapter) {
      first = i;
      break;
    }
  if (first == experts.size()) {
    for (const auto& m : previous->assembly.modules) modules.push_back(m.name);
    return modules;
  }
  modules = modules_of(experts[first], linear_names);
  if (modules.empty())
    throw_error(ErrorCode::invalid, kRoom, label(options.experts[first]) + " adapts none of the base's linear layers");
  for (std::size_t i = 0; i < experts.size(); ++i)
    if (experts[i].adapter && modules_of(experts[i], linear_names) != modules)
      throw_error(ErrorCode::mismatch, kRoom,
                  label(options.experts[i]) + " adapts other modules than " + label(options.experts[first]),
                  "assemble experts trained on the same targets");
  if (previous) {
    std::vector<std::string> before;
    for (const auto& m : previous->assembly.modules) before.push_back(m.name);
    if (before != modules)
      throw_error(ErrorCode::mismatch, kRoom,
                  label(options.experts[first]) + " adapts other modules than the experts of '" +
                      previous->dir.string() + "'",
                  "assemble experts trained on the same targets");
  }
  return modules;
}

// The file of one expert's factors inside a routed model (format 3).
std::string expert_file(const AssemblyExpert& e) { return "experts/" + e.name + "@" + e.version + ".safetensors"; }

// What the steps of build() share: the experts in routing order, which of them are read
// from their bundles ("fresh") and which are kept from `previous`, the modules, and which
// keys the router needs.
struct BuildPlan {
  const AssembleOptions& options;
  const std::vector<LoadedExpert>& experts;
  const model::LinearLayout& layout;
  const Previous* previous;
  std::vector<std::string> modules;
  std::int64_t rank = 0;            // the largest: every expert's factors are padded to it
  std::vector<std::int64_t> fresh;  // rows read from their bundles
  bool gate_keys = false;           // PHATGOOSE, SMEAR: keys from the gates
  bool arrow = false;               // keys from the factors themselves
  const char* key_tensor = nullptr; // ".gate" or ".avg_act": the bundle tensor keys come from
  bool has_keys() const { return gate_keys || arrow || key_tensor; }
};

BuildPlan plan_build(const AssembleOptions& options, const std::vector<LoadedExpert>& experts,
                     const model::LinearLayout& layout, const Previous* previous) {
  BuildPlan plan{options, experts, layout, previous, {}, 0, {}, false, false, nullptr};
  plan.modules = common_modules(experts, options, layout.names, previous);
  for (const auto& e : experts) plan.rank = std::max(plan.rank, e.info.rank);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(experts.size()); ++i)
    if (experts[i].previous_row < 0) plan.fresh.push_back(i);
  plan.gate_keys = options.router == RouterKind::phatgoose || options.router == RouterKind::smear;
  plan.arrow = options.router == RouterKind::arrow;
  plan.key_tensor = plan.gate_keys ? ".gate" : options.router == RouterKind::average_activation ? ".avg_act" : nullptr;
  // An expert imported from PEFT (or fresh from train-expert) has no gate yet: say so
  // before any stacking, not as a missing tensor half-way through.
  if (plan.key_tensor)
    for (auto i : plan.fresh)
      if (!experts[i].adapter->find(plan.modules.front() + plan.key_tensor))
        throw_error(ErrorCode::invalid, kRoom,
                    "bundle '" + experts[i].info.name + "/" + experts[i].info.version + "' has no " +
                        (plan.gate_keys ? "gates" : "average activations") + ": the " +
                        std::string(router_name(options.router)) + " router needs the expert's " +
                        (plan.gate_keys ? "trained gate" : "average activation") + " in every module",
                    "train them first: gaggle train-gate --base BASE --expert BUNDLE_DIR --data ITS_TRAIN.jsonl");
  return plan;
}

// assembly.json's fields, before any file is written.
Assembly describe_assembly(const AssembleOptions& options, std::vector<LoadedExpert>& experts, const std::string& base_fp) {
  const auto n = static_cast<std::int64_t>(experts.size());
  Assembly assembly;
  assembly.format_version = kAssemblyFormatVersion;
  assembly.base_fingerprint = base_fp;
  assembly.base_dir = fs::absolute(options.base_dir).lexically_normal().string();
  assembly.router = options.router;
  assembly.top_k = per_token(options.router) ? options.top_k : 0;
  assembly.factor_dtype = options.factor_dtype;
  for (auto& e : experts) {
    e.info.file = expert_file(e.info);
    assembly.experts.push_back(e.info);
  }
  if (options.ivf) {
    assembly.index.kind = "ivf";
    assembly.index.clusters =
        options.clusters > 0 ? options.clusters : std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(n))));
    assembly.index.probe = options.probe > 0 ? options.probe : std::max<std::int64_t>(1, assembly.index.clusters / 4);
    assembly.index.probe_margin = options.probe_margin;
    if (assembly.index.probe > assembly.index.clusters)
      throw_error(ErrorCode::usage, kRoom, "--probe " + std::to_string(assembly.index.probe) + " is more than the " +
                                               std::to_string(assembly.index.clusters) + " clusters");
  }
  return assembly;
}

// The retrieval router's index over every expert's embeddings, rows in routing order:
// kept experts' rows from the previous model's index, fresh ones from their bundles.
RetrievalIndex plan_retrieval_index(const BuildPlan& plan) {
  const auto n = static_cast<std::int64_t>(plan.experts.size());
  std::vector<LoadedExpert> loaded;
  for (auto i : plan.fresh) loaded.push_back(plan.experts[i]);
  RetrievalIndex fresh_index;
  if (!loaded.empty()) fresh_index = retrieval_index(loaded, plan.layout.d_model);
  at::Tensor old_embeddings, old_expert;
  if (plan.previous) {
    auto file = std::make_shared<const io::SafetensorsFile>(
        io::SafetensorsFile::open(plan.previous->dir / plan.previous->assembly.retrieval.file));
    old_embeddings = read_tensor(file, kRetrievalIndexEmbeddings);
    old_expert = read_tensor(file, kRetrievalIndexExpert);
  }
  std::vector<at::Tensor> rows, owner;
  for (std::int64_t i = 0, f = 0; i < n; ++i) {
    at::Tensor r = plan.experts[i].previous_row >= 0 ? old_embeddings.index({old_expert == plan.experts[i].previous_row})
                                                     : fresh_index.embeddings.index({fresh_index.expert == f++});
    owner.push_back(at::full({r.size(0)}, i, at::TensorOptions().dtype(at::kLong)));
    rows.push_back(r);
  }
  RetrievalIndex index;
  index.embeddings = at::cat(rows, 0).contiguous();
  index.expert = at::cat(owner, 0).contiguous();
  index.experts = n;
  return index;
}

// What the expert files yield for the module files: per module, the fresh experts' raw
// keys (gates, average activations or, for Arrow, the keys themselves), and their average
// activations, on which an index's recall is measured.
struct FreshKeys {
  std::vector<at::Tensor> raw;                  // [fresh, d_in] per module
  std::vector<std::vector<at::Tensor>> queries; // per module
};

// One file per expert with its factors for every module (padded to the largest rank,
// alpha / r folded into B). A kept expert's file is hard-linked from the previous model,
// never rewritten.
FreshKeys write_expert_files(const BuildPlan& plan, const fs::path& dir) {
  FreshKeys keys;
  keys.raw.resize(plan.modules.size());
  keys.queries.resize(plan.modules.size());
  if (plan.has_keys())
    for (std::size_t m = 0; m < plan.modules.size(); ++m)
      keys.raw[m] = at::empty({static_cast<std::int64_t>(plan.fresh.size()), plan.layout.shape(plan.modules[m])[1]});
  const std::int64_t rank = plan.rank;
  for (std::size_t i = 0, f = 0; i < plan.experts.size(); ++i) {
    const auto& e = plan.experts[i];
    const fs::path target = dir / e.info.file;
    if (e.previous_row >= 0) {
      const fs::path source = plan.previous->dir / plan.previous->assembly.experts[e.previous_row].file;
      std::error_code ec;
      fs::create_hard_link(source, target, ec);
      if (ec) fs::copy_file(source, target);  // another file system: copy
      continue;
    }
    if (plan.options.progress) plan.options.progress("stacking " + label(plan.options.experts[i]));
    io::SafetensorsWriter writer;
    for (std::size_t m = 0; m < plan.modules.size(); ++m) {
      const std::string& module = plan.modules[m];
      auto shape = plan.layout.shape(module);  // [d_out, d_in]
      const std::int64_t d_out = shape[0], d_in = shape[1];
      const std::int64_t r = e.adapter->at(module + ".lora_A").shape[0];
      auto A = at::zeros({rank, d_in});
      auto B = at::zeros({d_out, rank});
      A.narrow(0, 0, r).copy_(expert_tensor(e, module + ".lora_A", {r, d_in}));
      B.narrow(1, 0, r).copy_(expert_tensor(e, module + ".lora_B", {d_out, r}) * e.scaling.scale(module, r));
      if (plan.key_tensor)
        keys.raw[m][f].copy_(expert_tensor(e, module + plan.key_tensor, {d_in}, "train its gate first: gaggle train-gate"));
      else if (plan.arrow)
        keys.raw[m][f].copy_(arrow_keys(A.unsqueeze(0), B.unsqueeze(0))[0]);
      add_tensor(writer, module + ".A", A, plan.options.factor_dtype);
      add_tensor(writer, module + ".B", B, plan.options.factor_dtype);
      if (plan.options.ivf && e.adapter->find(module + ".avg_act"))
        keys.queries[m].push_back(expert_tensor(e, module + ".avg_act", {d_in}));
    }
    writer.set_metadata("format", "gaggle-routed-expert");
    writer.write(target);
    ++f;
  }
  return keys;
}

// One file per module with the routing keys, rows in routing order (kept experts' rows
// copied from the previous model, fresh ones computed from their own rows alone: every
// key function works row by row), and the IVF index when asked for, whose recall against
// exact top-k is measured on the fresh experts' average activations.
void write_module_files(const BuildPlan& plan, const FreshKeys& fresh_keys, const fs::path& dir, Assembly& assembly) {
  const auto n = static_cast<std::int64_t>(plan.experts.size());
  const auto fresh_rows = at::tensor(plan.fresh, at::TensorOptions().dtype(at::kLong));
  const AssembleOptions& options = plan.options;
  double recall_hits = 0, recall_queries = 0, probed = 0, candidates = 0;
  if (options.ivf && options.progress)
    options.progress("indexing the keys: " + std::to_string(assembly.index.clusters) + " clusters per module");
  for (std::size_t m = 0; m < plan.modules.size(); ++m) {
    const std::string& module = plan.modules[m];
    auto shape = plan.layout.shape(module);
    const std::int64_t d_out = shape[0], d_in = shape[1];
    io::SafetensorsWriter writer;
    if (plan.has_keys()) {
      auto keys = at::empty({n, d_in});
      if (plan.fresh.size() < plan.experts.size()) {
        auto file = std::make_shared<const io::SafetensorsFile>(
            io::SafetensorsFile::open(plan.previous->dir / plan.previous->assembly.modules[m].file));
        auto old_keys = read_tensor(file, module + ".keys");
        for (std::int64_t i = 0; i < n; ++i)
          if (plan.experts[i].previous_row >= 0) keys[i].copy_(old_keys[plan.experts[i].previous_row]);
      }
      if (!plan.fresh.empty()) {
        at::Tensor computed = plan.gate_keys ? phatgoose_keys(fresh_keys.raw[m])
                              : options.router == RouterKind::average_activation ? average_activation_keys(fresh_keys.raw[m])
                                                                                  : fresh_keys.raw[m];
        keys.index_copy_(0, fresh_rows, computed);
      }
      add_tensor(writer, module + ".keys", keys);
      if (options.ivf) {
        const IvfIndex index = build_ivf_index(keys, assembly.index.clusters);
        add_tensor(writer, module + ".ivf_centroids", index.centroids);
        add_tensor(writer, module + ".ivf_members", index.members);
        add_tensor(writer, module + ".ivf_offsets", index.offsets);
        if (!fresh_keys.queries[m].empty()) {
          auto q = layer_norm_no_affine(at::stack(fresh_keys.queries[m]).to(at::kFloat)) *
                   (1.0 / std::sqrt(static_cast<double>(d_in)));
          auto exact = std::get<1>(at::mm(q, keys.t()).topk(options.top_k, 1));
          // (with the margin the model will route with: the recall printed is the model's)
          auto approx = ivf_route(q, index, assembly.index.probe, options.top_k, 1e-6, assembly.index.probe_margin);
          recall_hits += topk_recall(exact, approx.topk_index) * static_cast<double>(q.size(0));
          recall_queries += static_cast<double>(q.size(0));
          probed += static_cast<double>(approx.probed);
          candidates += static_cast<double>(approx.candidates);
        }
      }
    }
    writer.set_metadata("format", "gaggle-routed-module");
    const std::string file = "modules/" + module + ".safetensors";
    writer.write(dir / file);
    assembly.modules.push_back({module, file, d_in, d_out, plan.rank});
  }
  if (recall_queries > 0) {
    assembly.index.recall = recall_hits / recall_queries;
    assembly.index.clusters_per_query = probed / recall_queries;
    assembly.index.candidates_per_query = candidates / recall_queries;
  }
}

// Writes the routed model (format 3): the retrieval index (retrieval router), one file per
// expert, one per module, then assembly.json, in a directory that replaces `out_dir`
// atomically. Experts kept from `previous` (same manifest, same rank) are not read again,
// and the bytes are those of a fresh assembly (tests/route/assembly_update_test.cpp).
Assembly build(const AssembleOptions& options, std::vector<LoadedExpert> experts, const std::string& base_fp,
               const model::LinearLayout& layout, const Previous* previous) {
  Assembly assembly = describe_assembly(options, experts, base_fp);
  const BuildPlan plan = plan_build(options, experts, layout, previous);
  at::NoGradGuard no_grad;
  RetrievalIndex index;
  if (options.router == RouterKind::retrieval) {
    if (options.progress) options.progress("stacking retrieval embeddings");
    index = plan_retrieval_index(plan);
  }
  io::AtomicDirectory dir(options.out_dir);
  fs::create_directories(dir.path() / "modules");
  fs::create_directories(dir.path() / "experts");
  if (options.router == RouterKind::retrieval) {
    io::SafetensorsWriter writer;
    add_tensor(writer, kRetrievalIndexEmbeddings, index.embeddings);
    add_tensor(writer, kRetrievalIndexExpert, index.expert);
    writer.set_metadata("format", "gaggle-retrieval-index");
    writer.write(dir.path() / kRetrievalFile);
    assembly.retrieval = {kRetrievalFile, index.embeddings.size(0), index.embeddings.size(1)};
  }
  const FreshKeys fresh_keys = write_expert_files(plan, dir.path());
  write_module_files(plan, fresh_keys, dir.path(), assembly);
  io::write_json_file_atomic(dir.path() / kAssemblyFile, assembly_to_json(assembly));
  dir.commit(options.force);
  return assembly;
}

void check_counts(const AssembleOptions& options) {
  if (options.experts.empty()) throw_error(ErrorCode::usage, kRoom, "assemble needs at least one expert");
  if (options.factor_dtype != io::DType::F32 && options.factor_dtype != io::DType::BF16)
    throw_error(ErrorCode::usage, kRoom,
                "the experts' factors are stored as F32 or BF16, not " + std::string(io::dtype_name(options.factor_dtype)));
  if (options.ivf) {
    if (options.router != RouterKind::phatgoose && options.router != RouterKind::average_activation)
      throw_error(ErrorCode::usage, kRoom,
                  "--index ivf serves the routers that score LN(u) · key: phatgoose and average-activation, not '" +
                      std::string(router_name(options.router)) + "'");
    const auto n = static_cast<std::int64_t>(options.experts.size());
    if (options.clusters < 0 || options.clusters > n)
      throw_error(ErrorCode::usage, kRoom,
                  "--clusters " + std::to_string(options.clusters) + " must be between 1 and the " + std::to_string(n) +
                      " experts (0: round(sqrt(N)))");
    if (options.probe < 0 || (options.clusters > 0 && options.probe > options.clusters))
      throw_error(ErrorCode::usage, kRoom, "--probe " + std::to_string(options.probe) + " must be between 1 and --clusters");
    if (!(options.probe_margin >= 0))
      throw_error(ErrorCode::usage, kRoom, "--probe-margin " + std::to_string(options.probe_margin) + " must be >= 0");
  }
  if (options.router == RouterKind::single && options.experts.size() != 1)
    throw_error(ErrorCode::usage, kRoom, "router 'single' takes exactly one expert", "name it with --expert NAME");
  const auto n = static_cast<std::int64_t>(options.experts.size());
  if (per_token(options.router) && (options.top_k < 1 || options.top_k > n))
    throw_error(ErrorCode::usage, kRoom,
                "--top-k " + std::to_string(options.top_k) + " must be between 1 and the " + std::to_string(n) + " experts");
}

// Loads (verifies) every expert not kept from `previous`; each name once.
std::vector<LoadedExpert> load_experts(const AssembleOptions& options, const std::string& base_fp,
                                       const std::vector<LoadedExpert>& kept = {}) {
  std::vector<LoadedExpert> experts;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < options.experts.size(); ++i) {
    const auto& source = options.experts[i];
    if (i < kept.size() && kept[i].previous_row >= 0) {
      experts.push_back(kept[i]);
      if (!source.verified) {  // its rows come from the routed model; its signer must still be trusted
        if (options.progress) options.progress("verifying " + label(source));
        auto v = load_expert(source, options, base_fp);
        experts.back().info.principal = v.info.principal;
        experts.back().info.key_fingerprint = v.info.key_fingerprint;
      }
    } else {
      if (options.progress) options.progress("verifying " + label(source));
      experts.push_back(load_expert(source, options, base_fp));
    }
    if (!seen.insert(experts.back().info.name).second)
      throw_error(ErrorCode::usage, kRoom, "expert '" + experts.back().info.name + "' is listed twice");
  }
  return experts;
}

}  // namespace

Assembly assemble(const AssembleOptions& options) {
  check_counts(options);
  if (fs::exists(options.out_dir) && !options.force)
    throw_error(ErrorCode::exists, kRoom, "'" + options.out_dir.string() + "' already exists", "pass --force to replace it");
  const std::string base_fp = model::base_fingerprint(options.base_dir);
  const model::LinearLayout layout = model::read_linear_layout(options.base_dir);
  return build(options, load_experts(options, base_fp), base_fp, layout, nullptr);
}

UpdateReport update_assembly(const UpdateOptions& update) {
  Previous previous{update.model_dir, read_assembly(update.model_dir)};
  const Assembly& before = previous.assembly;
  AssembleOptions options;
  options.base_dir = update.base_dir.empty() ? fs::path(before.base_dir) : update.base_dir;
  options.experts = update.experts;
  options.trust_file = update.trust_file;
  options.out_dir = update.model_dir;
  options.router = before.router;
  options.top_k = before.top_k ? before.top_k : 2;
  options.force = true;
  options.progress = update.progress;
  options.ivf = before.index.kind == "ivf";
  options.clusters = update.clusters >= 0 ? update.clusters : before.index.clusters;
  options.probe = update.clusters >= 0 ? 0 : before.index.probe;
  options.probe_margin = before.index.probe_margin;
  options.factor_dtype = before.factor_dtype;  // kept experts' files are linked as they are
  check_counts(options);
  const std::string base_fp = model::base_fingerprint(options.base_dir);
  if (base_fp != before.base_fingerprint)
    throw_error(ErrorCode::mismatch, kRoom,
                "'" + update.model_dir.string() + "' was assembled on base " + before.base_fingerprint + ", not on " +
                    options.base_dir.string() + " (" + base_fp + ")",
                "assemble afresh with --out");
  const model::LinearLayout layout = model::read_linear_layout(options.base_dir);

  // An expert is kept when the same manifest (name, version, sha256) is in the old model;
  // its signer is the one verified now when the caller verified it.
  std::map<std::string, std::int64_t> old_row;
  for (std::size_t j = 0; j < before.experts.size(); ++j) {
    const auto& e = before.experts[j];
    old_row[e.name + "@" + e.version + "#" + e.manifest_sha256] = static_cast<std::int64_t>(j);
  }
  UpdateReport report;
  std::vector<LoadedExpert> kept(options.experts.size());
  std::set<std::int64_t> used;
  for (std::size_t i = 0; i < options.experts.size(); ++i) {
    const auto& s = options.experts[i];
    const std::string sha = io::sha256_hex(io::read_file(s.dir / "manifest.json"));
    auto it = old_row.find(s.name + "@" + s.version + "#" + sha);
    if (it == old_row.end()) {
      report.added.push_back(s.name + "@" + s.version);
      continue;
    }
    kept[i].info = before.experts[it->second];
    if (s.verified) {
      kept[i].info.principal = s.principal;
      kept[i].info.key_fingerprint = s.key_fingerprint;
    }
    kept[i].previous_row = it->second;
    used.insert(it->second);
    ++report.kept;
  }
  for (std::size_t j = 0; j < before.experts.size(); ++j)
    if (!used.count(static_cast<std::int64_t>(j)))
      report.removed.push_back(before.experts[j].name + "@" + before.experts[j].version);

  auto experts = load_experts(options, base_fp, kept);
  std::int64_t rank = 0;
  for (const auto& e : experts) rank = std::max(rank, e.info.rank);
  bool same_order = report.added.empty() && report.removed.empty();
  for (std::size_t i = 0; same_order && i < experts.size(); ++i)
    same_order = experts[i].previous_row == static_cast<std::int64_t>(i) &&
                 experts[i].info.principal == before.experts[i].principal;
  if (same_order) {
    report.unchanged = true;
    report.assembly = before;
    return report;
  }
  // Rows are padded to the largest rank: when that changes, every row changes. A model
  // of an older format (experts stacked per module) is restacked too, into this one.
  if (before.modules.empty() || rank != before.modules.front().rank || before.format_version < 3) {
    report.restacked = true;
    for (auto& k : kept) k.previous_row = -1;
    experts = load_experts(options, base_fp);
  }
  report.assembly = build(options, std::move(experts), base_fp, layout, report.restacked ? nullptr : &previous);
  return report;
}

nlohmann::json assembly_to_json(const Assembly& a) {
  nlohmann::ordered_json j;
  j["format_version"] = a.format_version;
  j["kind"] = "gaggle-routed-model";
  j["base_fingerprint"] = a.base_fingerprint;
  j["base_dir"] = a.base_dir;
  j["router"] = std::string(router_name(a.router));
  j["top_k"] = a.top_k;
  j["lora_scale"] = 1.0;
  j["routing"] = {{"layer_norm_eps", kRouteLayerNormEps}, {"renorm_eps", 1e-6}, {"arrow_temperature", kArrowTemperature}};
  j["experts"] = nlohmann::ordered_json::array();
  for (const auto& e : a.experts) {
    j["experts"].push_back({{"name", e.name},
                            {"version", e.version},
                            {"principal", e.principal},
                            {"key_fingerprint", e.key_fingerprint},
                            {"manifest_sha256", e.manifest_sha256},
                            {"rank", e.rank},
                            {"lora_scale", e.lora_scale}});
    if (!e.file.empty()) j["experts"].back()["file"] = e.file;
  }
  j["modules"] = nlohmann::ordered_json::array();
  for (const auto& m : a.modules)
    j["modules"].push_back({{"name", m.name}, {"file", m.file}, {"d_in", m.d_in}, {"d_out", m.d_out}, {"rank", m.rank}});
  if (!a.index.kind.empty()) {
    j["index"] = {{"kind", a.index.kind}, {"clusters", a.index.clusters}, {"probe", a.index.probe}};
    if (std::isfinite(a.index.probe_margin)) j["index"]["probe_margin"] = a.index.probe_margin;
  }
  if (a.factor_dtype != io::DType::F32) j["factor_dtype"] = std::string(io::dtype_name(a.factor_dtype));
  if (!a.retrieval.file.empty())
    j["retrieval"] = {{"file", a.retrieval.file}, {"rows", a.retrieval.rows}, {"d_model", a.retrieval.d_model}};
  return nlohmann::json::parse(j.dump());  // (written with sorted keys)
}

Assembly read_assembly(const fs::path& model_dir) {
  const fs::path path = model_dir / kAssemblyFile;
  if (!fs::exists(path))
    throw_error(ErrorCode::not_found, kRoom, "'" + model_dir.string() + "' is not a routed model (no assembly.json)",
                "make one with gaggle assemble");
  auto j = io::read_json_file(path);
  if (j.is_object() && j.contains("format_version") && j["format_version"].is_number_integer() &&
      j["format_version"].get<int>() > kAssemblyFormatVersion)
    throw_error(ErrorCode::unsupported, kRoom,
                path.string() + ": format_version " + std::to_string(j["format_version"].get<int>()) +
                    " is newer than this gaggle reads (" + std::to_string(kAssemblyFormatVersion) + ")",
                "upgrade gaggle");
  io::validate_json(j, io::embedded_schema("assembly"), path.string());
  Assembly a;
  a.format_version = j["format_version"].get<int>();
  a.base_fingerprint = j["base_fingerprint"].get<std::string>();
  a.base_dir = j.value("base_dir", "");
  auto router = parse_router(j["router"].get<std::string>());
  if (!router) throw_error(ErrorCode::invalid, kRoom, path.string() + ": /router: unknown router");
  a.router = *router;
  a.top_k = j["top_k"].get<int>();
  for (const auto& e : j["experts"]) {
    a.experts.push_back({e["name"].get<std::string>(), e["version"].get<std::string>(), e.value("principal", ""),
                         e.value("key_fingerprint", ""), e.value("manifest_sha256", ""), e["rank"].get<std::int64_t>(),
                         e.value("lora_scale", 0.0), e.value("file", "")});
    const std::string& file = a.experts.back().file;
    if (a.format_version >= 3 && (file.empty() || file.find("..") != std::string::npos))
      throw_error(ErrorCode::invalid, kRoom,
                  path.string() + ": expert '" + a.experts.back().name + "': format 3 needs a file inside the model",
                  "assemble it again");
  }
  for (const auto& m : j["modules"]) {
    AssemblyModule mod{m["name"].get<std::string>(), m["file"].get<std::string>(), m["d_in"].get<std::int64_t>(),
                       m["d_out"].get<std::int64_t>(), m["rank"].get<std::int64_t>()};
    if (mod.file.find("..") != std::string::npos || mod.file.empty() || mod.file[0] == '/')
      throw_error(ErrorCode::invalid, kRoom, path.string() + ": module '" + mod.name + "': file '" + mod.file + "' is not inside the model");
    a.modules.push_back(mod);
  }
  if (j.contains("index")) {
    const auto& x = j["index"];
    a.index = {x["kind"].get<std::string>(), x["clusters"].get<std::int64_t>(), x["probe"].get<std::int64_t>()};
    a.index.probe_margin = x.value("probe_margin", kNoProbeMargin);
    if (a.router != RouterKind::phatgoose && a.router != RouterKind::average_activation)
      throw_error(ErrorCode::invalid, kRoom, path.string() + ": /index: the router '" + std::string(router_name(a.router)) +
                                                 "' takes no index");
    if (a.index.probe > a.index.clusters || a.index.clusters > static_cast<std::int64_t>(a.experts.size()))
      throw_error(ErrorCode::invalid, kRoom, path.string() + ": /index: probe <= clusters <= experts must hold");
  }
  if (per_token(a.router) && (a.top_k < 1 || a.top_k > static_cast<int>(a.experts.size())))
    throw_error(ErrorCode::invalid, kRoom, path.string() + ": /top_k: must be between 1 and the number of experts");
  if (needs_version_2(a.router) && a.format_version < 2)
    throw_error(ErrorCode::invalid, kRoom,
                path.string() + ": router '" + std::string(router_name(a.router)) + "' needs format_version 2, not " +
                    std::to_string(a.format_version),
                "assemble it again");
  if (a.router == RouterKind::retrieval) {
    if (!j.contains("retrieval"))
      throw_error(ErrorCode::invalid, kRoom, path.string() + ": /retrieval: missing (the retrieval router's index)",
                  "assemble it again");
    const auto& r = j["retrieval"];
    a.retrieval = {r["file"].get<std::string>(), r["rows"].get<std::int64_t>(), r["d_model"].get<std::int64_t>()};
  }
  if (j.contains("factor_dtype")) {  // the schema allows F32 and BF16
    a.factor_dtype = j["factor_dtype"].get<std::string>() == "BF16" ? io::DType::BF16 : io::DType::F32;
    if (a.factor_dtype != io::DType::F32 && a.format_version < 3)
      throw_error(ErrorCode::invalid, kRoom, path.string() + ": /factor_dtype: 16-bit factors need format_version 3");
  }
  return a;
}

}  // namespace gaggle::route
