// gaggle assemble — base + pool + router -> a routed model directory (lib/route/assembly.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "hub/pool.h"
#include "hub/pool_trust.h"
#include "io/error.h"
#include "verbs.h"
#ifdef GAGGLE_WITH_TORCH
#include <nlohmann/json.hpp>

#include "route/assembly.h"
#include "route/router.h"
#endif

namespace gaggle::cli {
namespace {

struct AssembleFlags {
  std::string base, pool, router, out, update, trust, expert, index = "exact", factor_dtype = "f32";
  std::int64_t clusters = -1, probe = 0;
  double probe_margin = -1;  // -1: none given
  std::vector<std::string> experts;
  int top_k = 2;
  bool force = false, quiet = false;
};

#ifdef GAGGLE_WITH_TORCH
// name or name@version -> the pool's bundle (the newest version listed when no version).
const hub::PoolBundle& find_bundle(const hub::Pool& pool, const std::string& spec, const std::string& pool_dir) {
  auto at = spec.find('@');
  const std::string name = spec.substr(0, at), version = at == std::string::npos ? "" : spec.substr(at + 1);
  const hub::PoolBundle* found = nullptr;
  for (const auto& b : pool.bundles)
    if (b.name == name && (version.empty() || b.version == version)) found = &b;  // sorted: the last is the newest
  if (!found)
    throw Error(ErrorCode::not_found, "cmd", "pool '" + pool_dir + "' holds no bundle '" + spec + "'",
                "see 'gaggle pool list --pool " + pool_dir + "'");
  return *found;
}

// The chosen bundles (default: the whole pool), verified by the pool's one rule for trust
// (hub/pool_trust.h: its recorded trust file or --trust, cached by file identity).
std::vector<route::ExpertSource> verified_sources(const AssembleFlags& f, const hub::Pool& pool,
                                                 std::vector<std::string> specs) {
  namespace fs = std::filesystem;
  if (specs.empty())
    for (const auto& b : pool.bundles) specs.push_back(b.name + "@" + b.version);
  std::vector<route::ExpertSource> sources;
  std::vector<fs::path> dirs;
  for (const auto& spec : specs) {
    const auto& b = find_bundle(pool, spec, f.pool);
    route::ExpertSource source;
    source.name = b.name, source.version = b.version, source.dir = fs::path(f.pool) / b.path;
    sources.push_back(source);
    dirs.push_back(sources.back().dir);
  }
  std::map<fs::path, hub::VerifiedBundle> verified;
  for (auto& v : hub::verify_pool(f.pool, f.trust, dirs)) verified[fs::weakly_canonical(v.dir)] = v;
  for (auto& s : sources) {
    auto it = verified.find(fs::weakly_canonical(s.dir));
    if (it == verified.end()) throw Error(ErrorCode::invalid, "cmd", "bundle '" + s.name + "' was not verified");
    s.verified = true;
    s.principal = it->second.principal;
    s.key_fingerprint = it->second.key_fingerprint;
  }
  return sources;
}

// The index line: its shape and the recall measured while making it.
void print_index(const route::Assembly& a) {
  if (a.index.kind.empty()) return;
  std::printf("index: ivf, %lld clusters per module, %lld probed per token", static_cast<long long>(a.index.clusters),
              static_cast<long long>(a.index.probe));
  if (std::isfinite(a.index.probe_margin))
    std::printf(" (those after the best within %g of its score)", a.index.probe_margin);
  if (a.index.recall >= 0)
    std::printf("; exact top-%d recall %.1f%% on the new experts' held-in average activations (%.2f clusters, "
                "%.1f experts scored each)\n",
                a.top_k, 100.0 * a.index.recall, a.index.clusters_per_query, a.index.candidates_per_query);
  else
    std::printf("; recall not measured (no average activations in the new bundles)\n");
}

int run_update(const AssembleFlags& f, const hub::Pool& pool) {
  if (!f.router.empty() || !f.expert.empty())
    throw Error(ErrorCode::usage, "cmd", "--update keeps the routed model's router and k",
                "to change them, assemble afresh with --out");
  route::UpdateOptions options;
  options.model_dir = f.update;
  options.base_dir = f.base;
  options.experts = verified_sources(f, pool, f.experts);
  if (f.factor_dtype != "f32")
    throw Error(ErrorCode::usage, "cmd", "--update keeps the model's factor dtype",
                "to change it, assemble afresh with --out");
  if (f.index != "exact" || f.probe || f.probe_margin >= 0)
    throw Error(ErrorCode::usage, "cmd", "--update keeps the model's index, probe and probe margin",
                "--clusters N rebuilds it with N clusters (0: round(sqrt(N experts))); or assemble afresh with --out");
  options.clusters = f.clusters;
  if (!f.quiet) options.progress = [](const std::string& m) { std::cerr << "assemble: " << m << "\n"; };
  auto r = route::update_assembly(options);
  if (r.unchanged) {
    std::printf("%s is up to date: %zu experts\n", f.update.c_str(), r.assembly.experts.size());
    return kExitSuccess;
  }
  std::printf("updated %s: %zu experts (%zu kept, %zu added, %zu removed)%s\n", f.update.c_str(),
              r.assembly.experts.size(), r.kept, r.added.size(), r.removed.size(),
              r.restacked ? "; the largest rank changed, so every row was restacked" : "");
  for (const auto& a : r.added) std::printf("  + %s\n", a.c_str());
  for (const auto& a : r.removed) std::printf("  - %s\n", a.c_str());
  print_index(r.assembly);
  return kExitSuccess;
}

int run_assemble(const AssembleFlags& f) {
  if (f.update.empty() == f.out.empty())
    throw Error(ErrorCode::usage, "cmd", "give exactly one of --out DIR (a new routed model) and --update DIR (bring one up to date)");
  if (!f.update.empty() && f.force) throw Error(ErrorCode::usage, "cmd", "--force is for --out");
  hub::Pool pool = hub::read_pool(f.pool);
  if (!f.update.empty()) return run_update(f, pool);
  const std::string router_name = f.router.empty() ? "phatgoose" : f.router;
  auto router = route::parse_router(router_name);
  if (!router)
    throw Error(ErrorCode::usage, "cmd", "unknown router '" + router_name + "'", "choose one of: " + route::router_names());
  std::vector<std::string> specs = f.experts;
  if (*router == route::RouterKind::single) {
    if (f.expert.empty()) throw Error(ErrorCode::usage, "cmd", "router 'single' needs --expert NAME");
    specs = {f.expert};
  } else if (!f.expert.empty()) {
    throw Error(ErrorCode::usage, "cmd", "--expert is for --router single", "use --experts NAME... to choose a subset");
  }
  route::AssembleOptions options;
  if (f.base.empty()) throw Error(ErrorCode::usage, "cmd", "--base BASE_DIR is needed to assemble afresh");
  options.base_dir = f.base;
  options.out_dir = f.out;
  options.router = *router;
  options.top_k = f.top_k;
  options.force = f.force;
  options.ivf = f.index == "ivf";
  if (!options.ivf && (f.clusters >= 0 || f.probe || f.probe_margin >= 0))
    throw Error(ErrorCode::usage, "cmd", "--clusters, --probe and --probe-margin are for --index ivf");
  if (f.probe_margin >= 0) options.probe_margin = f.probe_margin;
  options.clusters = std::max<std::int64_t>(f.clusters, 0);
  options.probe = f.probe;
  options.factor_dtype = f.factor_dtype == "bf16" ? io::DType::BF16 : io::DType::F32;
  options.experts = verified_sources(f, pool, specs);
  if (!f.quiet) options.progress = [](const std::string& m) { std::cerr << "assemble: " << m << "\n"; };
  auto a = route::assemble(options);
  std::printf("assembled %s: router %s", f.out.c_str(), std::string(route::router_name(a.router)).c_str());
  if (a.top_k) std::printf(", top-%d", a.top_k);
  std::printf(", %zu experts, %zu modules, base %s%s\n", a.experts.size(), a.modules.size(),
              a.base_fingerprint.substr(0, 19).c_str(), a.factor_dtype == io::DType::BF16 ? ", factors in BF16" : "");
  print_index(a);
  return kExitSuccess;
}
#endif

}  // namespace

#ifdef GAGGLE_WITH_TORCH
// gaggle inspect MODEL_DIR (called from inspect.cpp): experts, router, k and signers.
int inspect_routed_model(const std::string& path, bool json) {
  namespace fs = std::filesystem;
  auto a = route::read_assembly(path);
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (const auto& m : a.modules) bytes += fs::file_size(fs::path(path) / m.file, ec);
  for (const auto& e : a.experts)
    if (!e.file.empty()) bytes += fs::file_size(fs::path(path) / e.file, ec);
  if (!a.retrieval.file.empty()) bytes += fs::file_size(fs::path(path) / a.retrieval.file, ec);
  if (json) {
    auto j = route::assembly_to_json(a);
    j["path"] = path;
    j["module_bytes"] = bytes;
    std::cout << j.dump(2) << "\n";
    return kExitSuccess;
  }
  std::printf("routed model:  %s\n", path.c_str());
  std::printf("router:        %s", std::string(route::router_name(a.router)).c_str());
  if (a.top_k) std::printf(" (top-%d per token, every module)", a.top_k);
  else if (a.router == route::RouterKind::retrieval)
    std::printf(" (one expert per example, by %lld embeddings of width %lld)", static_cast<long long>(a.retrieval.rows),
                static_cast<long long>(a.retrieval.d_model));
  else if (a.router == route::RouterKind::smear)
    std::printf(" (per example, every expert merged by the mean routing distribution)");
  std::printf("\nbase:          %s\n               %s\n", a.base_fingerprint.c_str(), a.base_dir.c_str());
  std::printf("modules:       %zu, %.1f MiB of expert tensors (factors %s)\n", a.modules.size(), bytes / 1048576.0,
              std::string(io::dtype_name(a.factor_dtype)).c_str());
  std::size_t w = 6;
  for (const auto& e : a.experts) w = std::max(w, e.name.size() + 1 + e.version.size());
  std::printf("\n%zu experts:\n  %-*s  %4s  %-24s  %s\n", a.experts.size(), static_cast<int>(w), "expert", "rank",
              "signer", "key");
  for (const auto& e : a.experts)
    std::printf("  %-*s  %4lld  %-24s  %s\n", static_cast<int>(w), (e.name + "@" + e.version).c_str(),
                static_cast<long long>(e.rank), e.principal.c_str(), e.key_fingerprint.c_str());
  return kExitSuccess;
}
#endif

Runner setup_assemble(CLI::App& sub) {
  auto f = std::make_shared<AssembleFlags>();
  sub.add_option("--base", f->base,
                 "The base model (Hugging Face T5 or Llama checkpoint directory); with --update, default: the one "
                 "the routed model was assembled on");
  sub.add_option("--pool", f->pool, "The pool of bundles (gaggle pull)")->required();
  std::string routers = "The router (default phatgoose):";
#ifdef GAGGLE_WITH_TORCH
  for (auto kind : route::all_routers()) {
    std::string name(route::router_name(kind));
    routers += "\n  " + name + std::string(name.size() < 19 ? 19 - name.size() : 1, ' ') +
               std::string(route::router_summary(kind));
  }
#else
  routers += " phatgoose, arrow, average-activation, retrieval, merged, merged-factors, single or smear";
#endif
  sub.add_option("--router", f->router, routers);
  sub.add_option("--top-k", f->top_k, "Experts per token (phatgoose, arrow, average-activation)")->capture_default_str();
  sub.add_option("--experts", f->experts, "Only these bundles (NAME or NAME@VERSION); default: the whole pool");
  sub.add_option("--expert", f->expert, "The one expert of --router single");
  sub.add_option("--trust", f->trust,
                 "Allowed signers to verify the bundles against (default: the trust file the pool was pulled with, "
                 "POOL/.gaggle/allowed_signers; verification is cached by file identity)");
  sub.add_option("--index", f->index,
                 "Routing over the keys: exact (every expert scored), or ivf (k-means clusters of the keys; each "
                 "token scores the --probe best clusters' experts: sub-linear in the pool; phatgoose and "
                 "average-activation)")
      ->check(CLI::IsMember({"exact", "ivf"}))
      ->capture_default_str();
  sub.add_option("--clusters", f->clusters, "ivf: clusters per module (default: round(sqrt(N experts)))");
  sub.add_option("--probe", f->probe,
                 "ivf: clusters scored per token (default: a quarter of them; all of them is exact routing)");
  sub.add_option("--probe-margin", f->probe_margin,
                 "ivf: probe a cluster after a token's best only where its centroid score is within this of the "
                 "best's (a logit gap, e.g. 2); tokens that sit clearly in one cluster then score one cluster's "
                 "experts, so a large --probe costs only the tokens between clusters (--probe 16 --probe-margin 2: "
                 "99 % recall at 10,000 synthetic experts, docs/performance.md). The recall printed is measured "
                 "with it. Default: every token probes --probe clusters")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--factor-dtype", f->factor_dtype,
                 "How the experts' LoRA factors are stored: f32, or bf16 (half the bytes on disk and in memory "
                 "traffic, which is what a large pool's routed layers wait on; weights rounded to nearest even, "
                 "routing keys and arithmetic stay f32)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--out", f->out, "The routed model directory to write");
  sub.add_option("--update", f->update,
                 "Bring this routed model up to date with the pool, in place: rows of experts it already holds are "
                 "copied, only added experts are read; the result is byte-identical to a fresh assemble");
  sub.add_flag("--force", f->force, "Replace an existing --out");
  sub.add_flag("-q,--quiet", f->quiet, "No progress on stderr");
  set_example(sub,
              "  gaggle assemble --base t5-base --pool pool --router phatgoose --out routed\n"
              "  gaggle pull --hub https://hub.example/pool.git --pool pool && gaggle assemble --pool pool --update routed\n"
              "  gaggle assemble --base t5-base --pool pool --index ivf --clusters 100 --probe 16 --probe-margin 2 --out routed-ivf\n"
              "  gaggle assemble --base t5-base --pool pool --factor-dtype bf16 --out routed-bf16\n"
              "  gaggle assemble --base t5-base --pool pool --trust allowed_signers --router retrieval --out retrieval\n"
              "  gaggle assemble --base t5-base --pool pool --router single --expert sst2 --out sst2-only");
#ifdef GAGGLE_WITH_TORCH
  return [f]() -> int { return run_assemble(*f); };
#else
  return not_built_yet(sub, "a build with LibTorch");
#endif
}

}  // namespace gaggle::cli
