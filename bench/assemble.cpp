// gaggle-bench assemble — what an incremental assembly costs against a fresh one (issue #16).
//
// Makes a random T5 base (--d-model, d_ff = 4 d_model, --layers + --layers blocks, LoRA
// rank --rank on every linear) and --experts + 1 expert bundles with gates, then times:
//   full_ms    route::assemble of all N + 1 experts (the stacking a fresh
//              `gaggle assemble --out` does once the pool is verified);
//   update_ms  route::update_assembly of a model of the first N experts after the
//              (N + 1)-th joined the pool, in the middle of the routing order
//              (`gaggle assemble --update`);
// each the median of --repeats runs, and checks that both wrote the same bytes. The
// bundles are passed as already verified (the CLI verifies the pool first, cached by file
// identity: hub/pool_trust.h), so both figures are the assembly itself.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.h"
#include "bundle/manifest.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "model/fingerprint.h"
#include "model/t5.h"
#include "route/assembly.h"
#include "route/router.h"
#include "route/tensor_file.h"

namespace gaggle::bench {
namespace {

namespace fs = std::filesystem;

struct AssembleBenchOptions {
  std::int64_t experts = 166, rank = 16, d_model = 512, layers = 1;
  int repeats = 3;
  std::string router = "phatgoose", dir;
  bool json = false;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Every byte of every file under a directory, in path order.
bool same_files(const fs::path& a, const fs::path& b) {
  std::vector<fs::path> fa, fb;
  for (const auto& e : fs::recursive_directory_iterator(a))
    if (e.is_regular_file()) fa.push_back(fs::relative(e.path(), a));
  for (const auto& e : fs::recursive_directory_iterator(b))
    if (e.is_regular_file()) fb.push_back(fs::relative(e.path(), b));
  std::sort(fa.begin(), fa.end());
  std::sort(fb.begin(), fb.end());
  if (fa != fb) return false;
  for (const auto& f : fa)
    if (io::read_file(a / f) != io::read_file(b / f)) return false;
  return true;
}

int run(const AssembleBenchOptions& o) {
  auto router = route::parse_router(o.router);
  if (!router) throw Error(ErrorCode::usage, "bench", "unknown router '" + o.router + "'");
  const fs::path work = o.dir.empty() ? fs::temp_directory_path() / ("gaggle-bench-assemble-" + std::to_string(::getpid()))
                                      : fs::path(o.dir);
  fs::create_directories(work);
  std::cerr << "assemble: making a base and " << o.experts + 1 << " bundles in " << work << "\n";
  model::T5Config c;
  c.vocab_size = 256, c.d_model = o.d_model, c.d_kv = 64, c.num_heads = std::max<std::int64_t>(1, o.d_model / 64);
  c.d_ff = 4 * o.d_model, c.num_layers = o.layers, c.num_decoder_layers = o.layers, c.gated = true;
  at::manual_seed(0);
  const fs::path base = work / "base";
  model::save_t5(model::make_t5(c), base);
  const std::string fp = model::base_fingerprint(base);
  const auto names = model::t5_linear_names(c);
  std::vector<route::ExpertSource> sources;
  std::uintmax_t bundle_bytes = 0;
  for (std::int64_t i = 0; i <= o.experts; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "expert-%04lld", static_cast<long long>(i));
    const fs::path dir = work / "pool" / name;
    io::SafetensorsWriter w;
    for (const auto& m : names) {
      auto shape = model::t5_linear_shape(c, m);
      route::add_tensor(w, m + ".lora_A", at::randn({o.rank, shape[1]}) * 0.05);
      route::add_tensor(w, m + ".lora_B", at::randn({shape[0], o.rank}) * 0.05);
      route::add_tensor(w, m + ".gate", at::randn({shape[1]}));
      route::add_tensor(w, m + ".avg_act", at::randn({shape[1]}));
    }
    route::add_tensor(w, "retrieval_embeddings", at::randn({4, c.d_model}));
    fs::create_directories(dir);
    w.write(dir / "adapter.safetensors");
    bundle_bytes += fs::file_size(dir / "adapter.safetensors");
    bundle::Manifest m;
    m.name = name, m.version = "1.0.0", m.base_fingerprint = fp;
    m.body = {{"method", "lora"}, {"rank", o.rank}, {"hyperparameters", {{"lora_alpha", 1.0}}}};
    bundle::write_manifest(dir, m);
    sources.push_back({name, "1.0.0", dir, /*verified=*/true, "bench@example.com", "SHA256:bench"});
  }
  // The newcomer joins in the middle of the routing order.
  std::vector<route::ExpertSource> before = sources, after = sources;
  before.pop_back();
  after.insert(after.begin() + static_cast<std::ptrdiff_t>(o.experts / 2), after.back());
  after.pop_back();

  route::AssembleOptions full;
  full.base_dir = base, full.router = *router, full.force = true, full.experts = after;
  full.out_dir = work / "full";
  std::vector<double> full_ms, update_ms;
  for (int r = 0; r < o.repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    route::assemble(full);
    full_ms.push_back(ms_since(t0));
    route::AssembleOptions first = full;
    first.experts = before;
    first.out_dir = work / "updated";
    route::assemble(first);
    route::UpdateOptions u;
    u.model_dir = first.out_dir;
    u.experts = after;
    t0 = std::chrono::steady_clock::now();
    auto report = route::update_assembly(u);
    update_ms.push_back(ms_since(t0));
    if (report.kept != static_cast<std::size_t>(o.experts) || report.added.size() != 1)
      throw Error(ErrorCode::invalid, "bench", "the update did not keep N experts and add one");
  }
  const bool identical = same_files(work / "full", work / "updated");
  std::uintmax_t model_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(work / "full"))
    if (e.is_regular_file()) model_bytes += e.file_size();
  const double f = median_of(full_ms), u = median_of(update_ms);
  nlohmann::ordered_json j;
  j["command"] = command_line();
  j["router"] = o.router;
  j["experts_before"] = o.experts;
  j["experts_after"] = o.experts + 1;
  j["modules"] = names.size();
  j["d_model"] = o.d_model;
  j["rank"] = o.rank;
  j["pool_mib"] = static_cast<double>(bundle_bytes) / 1048576.0;
  j["model_mib"] = static_cast<double>(model_bytes) / 1048576.0;
  j["full_ms"] = f;
  j["update_ms"] = u;
  j["update_over_full"] = u / f;
  j["byte_identical"] = identical;
  if (o.dir.empty()) fs::remove_all(work);
  if (o.json) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << describe_run();
    std::printf("router %s, %lld -> %lld experts, %zu modules (d_model %lld, rank %lld), pool %.0f MiB, model %.0f MiB\n",
                o.router.c_str(), static_cast<long long>(o.experts), static_cast<long long>(o.experts + 1), names.size(),
                static_cast<long long>(o.d_model), static_cast<long long>(o.rank), j["pool_mib"].get<double>(),
                j["model_mib"].get<double>());
    std::printf("full assemble  %9.1f ms\nupdate (+1)    %9.1f ms   (%.1f%% of full)\nbyte-identical %s\n", f, u,
                100.0 * u / f, identical ? "yes" : "NO");
  }
  return identical ? 0 : 1;
}

}  // namespace

Runner setup_bench_assemble(CLI::App& sub) {
  auto o = std::make_shared<AssembleBenchOptions>();
  sub.add_option("--experts", o->experts, "N, experts in the routed model before one more joins")->capture_default_str();
  sub.add_option("--d-model", o->d_model, "Width of the random T5 base")->capture_default_str();
  sub.add_option("--layers", o->layers, "Encoder (and decoder) blocks")->capture_default_str();
  sub.add_option("--rank", o->rank, "LoRA rank of every expert")->capture_default_str();
  sub.add_option("--router", o->router, "The router to assemble with")->capture_default_str();
  sub.add_option("--repeats", o->repeats, "Timed runs of each (the median is reported)")->capture_default_str();
  sub.add_option("--dir", o->dir, "Keep the base, pool and models here (default: a temporary directory, removed)");
  sub.add_flag("--json", o->json, "One JSON object on stdout");
  return [o]() -> int {
    if (o->experts < 2 || o->repeats < 1)
      throw Error(ErrorCode::usage, "bench", "--experts must be at least 2 and --repeats at least 1");
    return run(*o);
  };
}

}  // namespace gaggle::bench
