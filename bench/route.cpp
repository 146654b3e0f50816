// gaggle-bench route — what routing among N experts costs (issue #7, item 7).
//
// Three figures, each the median of --repeats timed runs after a warm-up (base and routed
// alternated round by round; routed_over_base is the median of the rounds' ratios):
//   base_ms    the base computation alone;
//   routed_ms  routed over N experts, LoRA on every linear (route::RoutedLinear, run as
//              the model's hooked linears run it: forward(u, W));
//   dense_ms   a dense implementation that computes every expert for every token, then
//              masks to the top-k (route::dense_routed_update).
// --layer: one routed linear layer (d_in = d_out = d_model, --tokens tokens).
// Otherwise: one full encoder-decoder forward (logits) of a t5-small-sized random model,
// batch --batch x --seq tokens on each side, with every linear routed.
// Beside them: the cost model base + N·d_in + k·r·(d_in + d_out) multiply-adds per token
// per module, and the memory the assembled experts take.
// --index ivf (issue #15, item 2): routed_ms routes through an ivf index over each module's
// keys; exact_ms is the same experts routed exactly, and recall the share of tokens
// (over every routed module's inputs, for the model) whose top-k set is the exact one.
// --device cuda (issue #15, item 4): everything on the GPU, each timing waited for, and
// beside the times tokens/s and the float32 GEMM rate of that GPU (the roofline).
// --token-tasks T with --families F, for the model: F tasks, each a small vocabulary of
// its own; every family of gates is the direction its task's tokens take at that module
// (as a gate trained on the task's data aligns with them), and the batch's sequences come
// from T of the tasks. Without it a random model's tokens are near no family, and top-k
// is decided by noise.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.h"
#include "flops.h"
#include "model/runtime.h"
#include "model/t5.h"
#include "route/detail/packed_keys.h"
#include "route/ivf_index.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"
#include "route/tensor_file.h"

namespace gaggle::bench {
namespace {

struct RouteBenchOptions {
  std::int64_t experts = 166, top_k = 2, rank = 16, d_model = 512, tokens = 4096;
  std::int64_t d_ff = 2048, layers = 6, heads = 8, batch = 32, seq = 128, vocab = 32128;
  int repeats = 0;  // 0: 7 for a layer, 3 for the model
  bool layer = false, json = false, no_dense = false;
  std::string index = "exact";         // exact or ivf
  std::int64_t clusters = 0, probe = 8;  // ivf: 0 clusters = round(sqrt(N))
  double probe_margin = route::kNoProbeMargin;  // ivf: clusters after the first only within this of its score
  std::int64_t families = 0;             // synthetic gates around this many centres (0: independent)
  double token_signal = 0;               // tokens = this · a random expert's key + N(0, 1) noise (0: pure noise)
  std::int64_t token_tasks = 0;          // --layer: --token-signal's experts from this many; model: tasks in the batch
  std::string factor_dtype = "f32";      // the experts' factors in f32 or bf16
  std::string mapped;                    // --layer: write the experts here and route from their memory map
  std::string share_experts = "auto";    // model: modules of one shape share experts (auto: above 6 GB)
  std::string device = "cpu";            // where the model, tokens and experts live (cpu, cuda, cuda:N)
  std::string update = "auto";           // auto, per-expert or bucketed (the LibTorch-ops update, on the CPU too)
  double dense_max_gb = 8;  // skip the dense figure when its [T, N·r] buffer would exceed this
};

double median_ms(const std::function<void()>& fn, int repeats) {
  fn();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Two computations timed in alternation, round by round: on shared cores whose speed
// drifts over minutes, both see the same drift, and the median of the rounds' ratios is
// far steadier than a ratio of two medians taken minutes apart.
struct Alternated {
  double a_ms = 0, b_ms = 0, b_over_a = 0;
};
Alternated alternate_runs(const std::function<void()>& run_a, const std::function<void()>& run_b, int repeats,
                          const std::function<void()>& before_a = [] {}, const std::function<void()>& before_b = [] {}) {
  auto time_ms = [](const std::function<void()>& fn) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  before_a(), run_a();  // warm-ups
  before_b(), run_b();
  std::vector<double> a, b, ratio;
  for (int i = 0; i < repeats; ++i) {
    before_a();
    a.push_back(time_ms(run_a));
    before_b();
    b.push_back(time_ms(run_b));
    ratio.push_back(b.back() / a.back());
  }
  return {median(a), median(b), median(ratio)};
}

// One model's forward in two configurations: first/second switch it (untimed).
Alternated alternate(const std::function<void()>& first, const std::function<void()>& second,
                     const std::function<void()>& fn, int repeats) {
  return alternate_runs(fn, fn, repeats, first, second);
}

std::int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      std::int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 20, '\n');
  }
  return 0;
}

// Bytes this process has had fetched from storage so far (/proc/self/io "read_bytes").
std::int64_t storage_read_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  while (io >> key) {
    std::int64_t value = 0;
    io >> value;
    if (key == "read_bytes:") return value;
  }
  return -1;
}

// Makes a mapped tensor's pages cold, as they are when a routed model is first loaded:
// the file's pages leave the page cache, and the mapping reads only the pages touched (no
// read-around), so that storage_read_bytes counts what the routed passes needed.
void make_cold(const std::string& path, const at::Tensor& mapped) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(mapped.data_ptr()) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(mapped.data_ptr()) + mapped.nbytes();
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_RANDOM);
}

struct Experts {
  at::Tensor A, B, keys;
  std::shared_ptr<route::IvfIndex> index;  // --index ivf
};

// families > 0: each expert's gate is one of `families` random centres plus noise of the
// same size (pools in which several experts cover related tasks); 0: independent gates.
Experts random_experts(std::int64_t n, std::int64_t r, std::int64_t d_in, std::int64_t d_out, std::int64_t families = 0) {
  Experts e;
  e.A = at::randn({n, r, d_in}) * 0.01;  // the paper's initialisation scale
  e.B = at::randn({n, d_out, r}) * 0.01;
  at::Tensor gates = at::randn({n, d_in});
  if (families > 0) gates = gates + at::randn({families, d_in}).index_select(0, at::arange(n) % families);
  e.keys = route::phatgoose_keys(gates);
  return e;
}

// Keys [n, d] whose gates are family centres plus noise of the same size: expert e in
// family e % F around centre_dir[e % F] (unit rows [F, d], scaled to the norm of a
// noise row).
at::Tensor keys_around(const at::Tensor& centre_dir, std::int64_t n) {
  const std::int64_t d = centre_dir.size(1), families = centre_dir.size(0);
  auto centres = centre_dir * std::sqrt(static_cast<double>(d));
  return route::phatgoose_keys(at::randn({n, d}) + centres.index_select(0, at::arange(n) % families));
}

// --token-tasks for the model: each task a vocabulary of kTaskVocabulary token ids.
constexpr std::int64_t kTaskVocabulary = 64;

// ids [tasks.size(0), seq]: sequence i drawn from task tasks[i]'s vocabulary.
at::Tensor task_ids(const at::Tensor& task_vocabulary, const at::Tensor& tasks, std::int64_t seq) {
  auto position = at::randint(kTaskVocabulary, {tasks.size(0), seq}, at::kLong);
  return task_vocabulary.index_select(0, tasks).gather(1, position);
}

// Records, for one linear, the mean direction of LN(u) over each sequence of a batch in
// which sequence f is task f's: the centre its family's gates are drawn around.
class TaskCentres : public model::LinearAdapter {
 public:
  explicit TaskCentres(std::int64_t tasks) : tasks_(tasks) {}
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override {
    auto x = u.reshape({tasks_, -1, u.size(-1)}).to(at::kFloat);
    x = x - x.mean(-1, /*keepdim=*/true);
    x = x / x.norm(2, {-1}, true).clamp_min(1e-12);
    auto mean = x.mean(1);
    centres_ = mean / mean.norm(2, {-1}, true).clamp_min(1e-12);
    return base_out;
  }
  const at::Tensor& centres() const { return centres_; }

 private:
  std::int64_t tasks_;
  at::Tensor centres_;  // [tasks, d_in], unit rows
};

// Computes every expert for every token, then masks to the routing.
class DenseAdapter : public model::LinearAdapter {
 public:
  explicit DenseAdapter(std::shared_ptr<route::RoutedLinear> layer)
      : layer_(std::move(layer)),
        stacked_A_(layer_->stacked_A().to(at::kFloat)),
        stacked_B_(layer_->stacked_B().to(at::kFloat)) {}
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override {
    auto routing = layer_->route(u);
    auto update = route::dense_routed_update(u, stacked_A_, stacked_B_, routing, layer_->lora_scale());
    return base_out + update.reshape(base_out.sizes());
  }

 private:
  std::shared_ptr<route::RoutedLinear> layer_;
  at::Tensor stacked_A_, stacked_B_;
};

// Routes through the index and counts, on the module's real inputs, the tokens whose top-k
// set is the exact one (and the candidates the index scored). The model's later modules
// then see what the indexed model computes.
class RecallAdapter : public model::LinearAdapter {
 public:
  struct Tally {
    double hits = 0, tokens = 0, candidates = 0, probed = 0;
  };
  // `tally` counts over the whole model, `kind` over the modules of one kind (the same
  // projection in every block).
  RecallAdapter(std::shared_ptr<route::RoutedLinear> indexed, std::shared_ptr<route::RoutedLinear> exact,
                std::shared_ptr<route::IvfIndex> index, std::int64_t probe, double margin, Tally& tally, Tally& kind)
      : indexed_(std::move(indexed)),
        exact_(std::move(exact)),
        index_(std::move(index)),
        probe_(probe),
        margin_(margin),
        tally_(tally),
        kind_(kind) {}
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override {
    auto u2 = u.reshape({-1, u.size(-1)});
    const auto& o = exact_->options();
    auto want = exact_->route(u2).topk_index;
    auto got = route::ivf_route_tokens(u2, *index_, probe_, o.top_k, o.renorm_eps, o.layer_norm_eps, margin_);
    const auto t = static_cast<double>(u2.size(0));
    const double hits = route::topk_recall(want, got.topk_index) * t;
    for (Tally* tally : {&tally_, &kind_}) {
      tally->hits += hits;
      tally->tokens += t;
      tally->candidates += static_cast<double>(got.candidates);
      tally->probed += static_cast<double>(got.probed);
    }
    // The indexed decision just made is the one the layer would make: combine it rather
    // than route the tokens through the index a second time.
    return indexed_->combine(u, base_out, route::Routing{at::Tensor(), got.topk_index, got.topk_weight});
  }

 private:
  std::shared_ptr<route::RoutedLinear> indexed_, exact_;
  std::shared_ptr<route::IvfIndex> index_;
  std::int64_t probe_;
  double margin_;
  Tally& tally_;
  Tally& kind_;
};

// A module's kind: its name without the block number ("encoder.block.3.layer.0.SelfAttention.q"
// -> "encoder.layer.0.SelfAttention.q"; t5_linear_names' form).
std::string module_kind(const std::string& name) {
  const std::size_t block = name.find(".block.");
  if (block == std::string::npos) return name;
  const std::size_t rest = name.find('.', block + 7);  // after the block number
  return name.substr(0, block) + (rest == std::string::npos ? "" : name.substr(rest));
}

// A probe margin in JSON: a number, or null for none (JSON has no infinity).
nlohmann::ordered_json margin_json(double margin) {
  return std::isfinite(margin) ? nlohmann::ordered_json(margin) : nlohmann::ordered_json();
}

// The clusters of an ivf index over n experts: --clusters, or round(sqrt(n)).
std::int64_t clusters_for(const RouteBenchOptions& o) {
  return o.clusters > 0 ? std::min(o.clusters, o.experts)
                        : std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(o.experts))));
}

// What gaggle assemble --factor-dtype bf16 stores.
void apply_factor_dtype(Experts& e, const RouteBenchOptions& o) {
  if (o.factor_dtype != "bf16") return;
  e.A = e.A.to(at::kBFloat16);
  e.B = e.B.to(at::kBFloat16);
}

nlohmann::ordered_json common(const RouteBenchOptions& o) {
  nlohmann::ordered_json j;
  j["experts"] = o.experts;
  j["top_k"] = o.top_k;
  j["rank"] = o.rank;
  j["d_model"] = o.d_model;
  j["threads"] = model::torch_threads();
  j["blas"] = model::loaded_blas_library();
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  j["openblas_coretype"] = core ? core : "";
  return j;
}

void print(const nlohmann::ordered_json& j, bool json) {
  if (json) {
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << describe_run();
  for (const auto& [k, v] : j.items()) std::cout << k << ": " << v.dump() << "\n";
}

// --update: which implementation of the update the routed layers run.
route::RoutedLinearOptions layer_options(const RouteBenchOptions& o) {
  using Update = route::RoutedLinearOptions::GenericUpdate;
  route::RoutedLinearOptions options;
  if (o.update != "auto") {
    options.force_generic = true;
    options.generic_update = o.update == "bucketed" ? Update::bucketed : Update::per_expert;
  }
  return options;
}

// A GPU runs kernels asynchronously: a timed computation ends when its device is done.
std::function<void()> waited(const at::Device& device, std::function<void()> fn) {
  if (!device.is_cuda()) return fn;
  return [device, fn = std::move(fn)] {
    fn();
    torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  };
}

void to_device(Experts& e, const at::Device& device) {
  e.A = e.A.to(device);
  e.B = e.B.to(device);
  e.keys = e.keys.to(device);
}

// On a GPU: tokens/s through base and routed, and the achieved rate of the base
// computation (`base_flops`) against the GPU's float32 GEMM (8192², measured here).
void add_gpu_figures(nlohmann::ordered_json& j, const RouteBenchOptions& o, double tokens, double base_flops,
                     double base_ms, double routed_ms) {
  if (!at::Device(o.device).is_cuda()) return;
  const auto gemm = model::measure_gemm(8192, 5, o.device);
  j["gemm_gflops"] = gemm.gflops;
  j["base_tokens_per_s"] = tokens / (base_ms / 1e3);
  j["routed_tokens_per_s"] = tokens / (routed_ms / 1e3);
  j["base_gflops"] = base_flops / (base_ms / 1e3) / 1e9;
  j["base_over_roofline"] = base_flops / (base_ms / 1e3) / 1e9 / gemm.gflops;
}

int run_layer(const RouteBenchOptions& o) {
  c10::InferenceMode guard;
  const std::int64_t d = o.d_model, n = o.experts, r = o.rank, k = o.top_k, t = o.tokens;
  const at::Device device(o.device);
  at::manual_seed(0);
  auto u = at::randn({t, d});
  auto w = at::randn({d, d}) * (1.0 / std::sqrt(static_cast<double>(d)));
  auto e = random_experts(n, r, d, d, o.families);
  apply_factor_dtype(e, o);
  // --mapped: the factors as an assembled model holds them, views of a memory-mapped
  // safetensors file, so that a routed pass reads (and makes resident) only the experts
  // its tokens choose.
  std::string mapped_path;
  if (!o.mapped.empty()) {
    std::filesystem::create_directories(o.mapped);
    mapped_path = std::filesystem::absolute(std::filesystem::path(o.mapped) / "experts.safetensors").string();
    const auto store = o.factor_dtype == "bf16" ? io::DType::BF16 : io::DType::F32;
    {
      io::SafetensorsWriter writer;
      route::add_tensor(writer, "A", e.A, store);
      route::add_tensor(writer, "B", e.B, store);
      writer.write(mapped_path);
    }
    auto file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(mapped_path));
    e.A = route::read_tensor(file, "A", /*keep_bf16=*/true);
    e.B = route::read_tensor(file, "B", /*keep_bf16=*/true);
    make_cold(mapped_path, e.A);
    make_cold(mapped_path, e.B);
  }
  if (o.token_signal > 0) {
    // A batch from a few tasks: each token resembles one of `token_tasks` experts.
    auto pick = at::randint(o.token_tasks > 0 ? std::min(o.token_tasks, n) : n, {t}, at::kLong);
    if (o.token_tasks > 0) pick = at::randperm(n, at::kLong).index_select(0, pick);
    u = u + o.token_signal * e.keys.index_select(0, pick);
  }
  u = u.to(device), w = w.to(device);
  to_device(e, device);
  route::RoutedLinearOptions options = layer_options(o);
  options.top_k = static_cast<int>(k);
  auto layer = std::make_shared<route::RoutedLinear>(e.A, e.B, e.keys, options);
  // --index ivf: `layer` routes through the index; `exact` is the same experts routed exactly.
  auto exact = std::make_shared<route::RoutedLinear>(e.A, e.B, e.keys, options);
  const bool ivf = o.index == "ivf";
  double build_ms = 0;
  std::int64_t clusters = 0;
  std::shared_ptr<route::IvfIndex> index;
  if (ivf) {
    clusters = clusters_for(o);
    auto t0 = std::chrono::steady_clock::now();
    index = std::make_shared<route::IvfIndex>(route::build_ivf_index(e.keys, clusters));
    build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    layer->set_index(index, std::min(o.probe, clusters), o.probe_margin);
  }
  const int repeats = o.repeats > 0 ? o.repeats : 7;
  at::Tensor sink;
  const std::int64_t read_before = storage_read_bytes();
  // The routed layer as the model's hooked linears run it (forward: W u, then the update
  // added into it), alternated with the base round by round.
  const Alternated timed = alternate_runs(waited(device, [&] { sink = at::linear(u, w); }),
                                          waited(device, [&] { sink = layer->forward(u, w); }), repeats);
  const double base_ms = timed.a_ms, routed_ms = timed.b_ms;
  // What the routed passes read of the experts (before the exact reference runs).
  const std::int64_t routed_read = storage_read_bytes() - read_before;
  double exact_ms = ivf ? median_ms(waited(device, [&] { sink = exact->forward(u, w); }), repeats) : routed_ms;
  // The same layer with forward() over the whole batch (W u, then route, then update),
  // alternated with the one-pass forward: the one pass's gain on this machine, this run.
  double whole_batch_ratio = 0, whole_batch_ms = 0;
  if (!ivf) {
    route::RoutedLinearOptions whole = options;
    whole.one_pass_forward = false;
    route::RoutedLinear whole_batch(e.A, e.B, e.keys, whole);
    const Alternated against = alternate_runs(waited(device, [&] { sink = whole_batch.forward(u, w); }),
                                              waited(device, [&] { sink = layer->forward(u, w); }), repeats);
    whole_batch_ms = against.a_ms, whole_batch_ratio = against.b_over_a;
  }
  // Where the routed time goes: the routing decision (LN, score GEMM, softmax, top-k) and
  // the grouped LoRA update given a routing (base output precomputed).
  route::Routing routing;
  double route_ms =
      median_ms(waited(device, [&] { routing = layer->route(u, /*keep_scores=*/false); }), repeats);  // as apply does
  auto base_out = at::mm(u, w.t());
  double combine_ms = median_ms(waited(device, [&] { sink = layer->combine(u, base_out, routing); }), repeats);
  // Of the routing decision: the raw scores u · key (what the fused decision computes;
  // LayerNorm is folded into it) and the rest (token moments, the score transform, top-k,
  // the softmax's normaliser and the weights). The scores as the layer makes them: by our
  // packed kernel where the layer packed its keys for it, otherwise by the BLAS.
  double scores_ms = 0;
  if (const route::detail::PackedKeys* packed = exact->packed_keys()) {
    auto raw = at::empty({t, n}, u.options());
    const float* u_data = u.data_ptr<float>();
    float* raw_data = raw.data_ptr<float>();
    scores_ms = median_ms([&] {
      at::parallel_for(0, t, 512, [&](std::int64_t begin, std::int64_t end) {
        packed->scores(u_data + begin * d, end - begin, raw_data + begin * n, n);
      });
    }, repeats);
  } else {
    scores_ms = median_ms(waited(device, [&] { sink = at::mm(u, e.keys.t()); }), repeats);
  }
  const double dense_gb = static_cast<double>(t) * n * r * 4 / 1e9;
  double dense_ms = -1;
  if (!o.no_dense && dense_gb <= o.dense_max_gb) {
    DenseAdapter dense(layer);  // stacks every expert: made only when it runs
    dense_ms = median_ms(waited(device, [&] { sink = dense.apply(u, at::mm(u, w.t())); }), repeats);
  }

  auto j = common(o);
  j["mode"] = "layer";
  j["device"] = o.device;
  j["tokens"] = t;
  j["base_ms"] = base_ms;
  j["routed_ms"] = routed_ms;
  j["dense_ms"] = dense_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(dense_ms);
  j["route_ms"] = route_ms;
  j["combine_ms"] = combine_ms;
  j["routed_over_base"] = timed.b_over_a;  // the median of alternated rounds' ratios
  if (!ivf) {
    j["whole_batch_ms"] = whole_batch_ms;                // forward without the one pass
    j["one_pass_over_whole_batch"] = whole_batch_ratio;  // the median of alternated rounds' ratios
  }
  j["dense_over_base"] = dense_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(dense_ms / base_ms);
  j["index"] = o.index;
  j["exact_ms"] = exact_ms;
  j["exact_over_base"] = exact_ms / base_ms;
  j["families"] = o.families;
  j["token_signal"] = o.token_signal;
  j["token_tasks"] = o.token_tasks;
  j["factor_dtype"] = o.factor_dtype;
  j["update"] = o.update;
  // Multiply-adds per token: the base layer, the k chosen experts' update, exact routing's scores.
  const double base_macs = static_cast<double>(d) * d, update_macs = k * r * 2.0 * d;
  const double extra = static_cast<double>(n) * d + update_macs;
  if (ivf) {
    // Recall: the share of tokens whose top-k set is the exact one, over all t tokens.
    const auto want = exact->route(u).topk_index;
    auto approx = route::ivf_route_tokens(u, *index, std::min(o.probe, clusters), static_cast<int>(k),
                                          options.renorm_eps, options.layer_norm_eps, o.probe_margin);
    const double candidates = static_cast<double>(approx.candidates) / static_cast<double>(t);
    j["clusters"] = clusters;
    j["probe"] = std::min(o.probe, clusters);
    j["probe_margin"] = margin_json(o.probe_margin);
    j["clusters_per_token"] = static_cast<double>(approx.probed) / static_cast<double>(t);
    j["index_build_ms"] = build_ms;
    j["recall"] = route::topk_recall(want, approx.topk_index);
    j["candidates_per_token"] = candidates;
    // The same count for the indexed routing: every centroid and every candidate key scored
    // in full (d multiply-adds each), then the update. At 10,000 experts in 100 clusters
    // this alone is ~1.5x base: below it needs cheaper scores, not less overhead.
    const double ivf_extra = (static_cast<double>(clusters) + candidates) * d + update_macs;
    j["ivf_cost_model"] = {{"routing_macs_per_token", ivf_extra}, {"routed_over_base", 1 + ivf_extra / base_macs}};
  } else {
    // Each part against what the cost model gives it at the base GEMM's measured rate.
    const double ms_per_mac = base_ms / base_macs;
    j["scores_ms"] = scores_ms;
    j["select_ms"] = route_ms - scores_ms;
    j["ideal_scores_ms"] = ms_per_mac * static_cast<double>(n) * d;
    j["ideal_combine_ms"] = ms_per_mac * update_macs;
  }
  j["cost_model"] = {{"base_macs_per_token", base_macs},
                     {"routing_macs_per_token", extra},
                     {"routed_over_base", 1 + extra / base_macs},
                     {"dense_over_base", 1 + (static_cast<double>(n) * d + n * r * 2.0 * d) / base_macs}};
  j["expert_bytes"] = (e.A.numel() + e.B.numel()) * e.A.element_size() + e.keys.numel() * 4;
  // The distinct experts these tokens' routing chose: the update reads their factors.
  j["experts_chosen"] = std::get<0>(at::_unique(layer->route(u).topk_index.reshape({-1}))).numel();
  j["peak_rss_bytes"] = peak_rss_bytes();
  add_gpu_figures(j, o, static_cast<double>(t), 2 * base_macs * static_cast<double>(t), base_ms, routed_ms);
  if (!mapped_path.empty()) {
    // The experts the routing of these tokens chooses, and the bytes of their factors.
    const std::int64_t chosen = j["experts_chosen"];
    const std::int64_t factor_bytes = (e.A.numel() + e.B.numel()) * e.A.element_size() / n;
    j["mapped_file_bytes"] = static_cast<std::int64_t>(std::filesystem::file_size(mapped_path));
    j["chosen_factor_bytes"] = chosen * factor_bytes;
    // Read from storage by the routed passes, the file's pages cold at the start (null where
    // /proc/self/io is not readable).
    j["routed_read_bytes"] = routed_read >= 0 && read_before >= 0 ? nlohmann::ordered_json(routed_read)
                                                                   : nlohmann::ordered_json();
  }
  print(j, o.json);
  return 0;
}

int run_model(const RouteBenchOptions& o) {
  model::T5Config c;
  c.vocab_size = o.vocab, c.d_model = o.d_model, c.d_kv = o.d_model / o.heads, c.d_ff = o.d_ff;
  c.num_layers = c.num_decoder_layers = o.layers, c.num_heads = o.heads, c.gated = true;
  c.tie_word_embeddings = false;
  at::manual_seed(0);
  const at::Device device(o.device);
  auto model = model::make_t5(c);
  model->eval();
  model->to(device);
  c10::InferenceMode guard;
  auto ids = at::randint(2, c.vocab_size, {o.batch, o.seq}, at::kLong);
  auto mask = at::ones({o.batch, o.seq}, at::kLong);
  auto dec = at::randint(2, c.vocab_size, {o.batch, o.seq}, at::kLong);
  const int repeats = o.repeats > 0 ? o.repeats : 3;
  at::Tensor sink;
  auto forward = waited(device, [&] { sink = model->forward(ids, mask, dec); });
  // --token-tasks: a batch from a few tasks, and each module's task centres from one
  // forward over a sequence of every task.
  std::map<std::string, at::Tensor> centres_of;
  const bool tasks = o.token_tasks > 0;
  if (tasks) {
    const std::int64_t families = o.families;
    auto task_vocabulary = at::randint(2, c.vocab_size, {families, kTaskVocabulary}, at::kLong);
    auto every_task = at::arange(families, at::kLong);
    auto calibration_ids = task_ids(task_vocabulary, every_task, o.seq);
    auto calibration_dec = task_ids(task_vocabulary, every_task, o.seq);
    std::map<std::string, std::shared_ptr<TaskCentres>> capture;
    for (const auto& name : model->linear_names()) {
      capture[name] = std::make_shared<TaskCentres>(families);
      model->set_adapter(name, capture[name]);
    }
    model->forward(calibration_ids.to(device), at::ones({families, o.seq}, at::kLong).to(device),
                   calibration_dec.to(device));
    model->clear_adapters();
    for (const auto& [name, adapter] : capture) centres_of[name] = adapter->centres().cpu();
    auto in_batch = at::randperm(families, at::kLong).narrow(0, 0, std::min(o.token_tasks, families));
    auto task_of_sequence = in_batch.index_select(0, at::randint(in_batch.size(0), {o.batch}, at::kLong));
    ids = task_ids(task_vocabulary, task_of_sequence, o.seq);
    dec = task_ids(task_vocabulary, task_of_sequence, o.seq);
  }
  ids = ids.to(device), mask = mask.to(device), dec = dec.to(device);

  // Experts for every linear. Each module gets its own tensors (as an assembled model
  // has) unless that would not fit or --share-experts always: then modules of one shape
  // share them (same compute).
  std::int64_t expert_bytes = 0, base_macs = 0, extra_macs = 0, modules = 0;
  std::map<std::pair<std::int64_t, std::int64_t>, Experts> by_shape;
  std::vector<std::string> names = model->linear_names();
  const std::int64_t factor_bytes = o.factor_dtype == "bf16" ? 2 : 4;
  for (const auto& name : names) {
    auto shape = model::t5_linear_shape(c, name);
    expert_bytes += o.experts * (o.rank * (shape[0] + shape[1]) * factor_bytes + shape[1] * 4);
  }
  const bool share = o.share_experts == "always" || (o.share_experts == "auto" && expert_bytes > 6e9);
  const bool ivf = o.index == "ivf";
  const std::int64_t clusters = ivf ? clusters_for(o) : 0, probe = std::min(o.probe, clusters);
  double build_ms = 0;
  std::vector<std::shared_ptr<route::RoutedLinear>> layers, exact_layers;
  std::vector<Experts> experts_of;  // per module (the same tensors and index where shared)
  route::RoutedLinearOptions options = layer_options(o);
  options.top_k = static_cast<int>(o.top_k);
  for (const auto& name : names) {
    auto shape = model::t5_linear_shape(c, name);  // [d_out, d_in]
    const std::int64_t d_out = shape[0], d_in = shape[1];
    Experts e;
    const bool shared = share && by_shape.count({d_out, d_in});
    if (shared) {
      e = by_shape[{d_out, d_in}];
    } else {
      e = random_experts(o.experts, o.rank, d_in, d_out, o.families);
      apply_factor_dtype(e, o);
    }
    // Each module's own keys around its own task centres (the factors may still be shared).
    if (tasks) e.keys = keys_around(centres_of.at(name), o.experts).to(device);
    if (!shared) to_device(e, device);
    if (ivf && (!shared || tasks)) {
      auto t0 = std::chrono::steady_clock::now();
      e.index = std::make_shared<route::IvfIndex>(route::build_ivf_index(e.keys, clusters));
      build_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    // Stored with its index: the next module of this shape reuses both unless it has tasks.
    if (share && !shared) by_shape[{d_out, d_in}] = e;
    layers.push_back(std::make_shared<route::RoutedLinear>(e.A, e.B, e.keys, options));
    if (ivf) {
      layers.back()->set_index(e.index, probe, o.probe_margin);
      exact_layers.push_back(std::make_shared<route::RoutedLinear>(e.A, e.B, e.keys, options));
    }
    experts_of.push_back(e);
    // Tokens through this module: the encoder's, or the decoder's (cross k, v: encoder tokens).
    base_macs += d_in * d_out;
    extra_macs += o.experts * d_in + o.top_k * o.rank * (d_in + d_out);
    ++modules;
  }
  auto base = [&] { model->clear_adapters(); };
  auto routed = [&] {
    for (std::size_t i = 0; i < names.size(); ++i) model->set_adapter(names[i], layers[i]);
  };
  const Alternated timed = alternate(base, routed, forward, repeats);
  const double base_ms = timed.a_ms, routed_ms = timed.b_ms;
  Alternated exact_timed;
  RecallAdapter::Tally tally;
  std::map<std::string, RecallAdapter::Tally> by_kind;
  if (ivf) {
    auto exact = [&] {
      for (std::size_t i = 0; i < names.size(); ++i) model->set_adapter(names[i], exact_layers[i]);
    };
    exact_timed = alternate(base, exact, forward, repeats);
    for (std::size_t i = 0; i < names.size(); ++i)
      model->set_adapter(names[i], std::make_shared<RecallAdapter>(layers[i], exact_layers[i], experts_of[i].index,
                                                                    probe, o.probe_margin, tally,
                                                                    by_kind[module_kind(names[i])]));
    forward();
  }
  const std::int64_t tokens = o.batch * o.seq;
  double dense_ms = -1;
  const double dense_gb = static_cast<double>(tokens) * o.experts * o.rank * 4 / 1e9;
  if (!o.no_dense && dense_gb <= o.dense_max_gb) {
    for (std::size_t i = 0; i < names.size(); ++i) model->set_adapter(names[i], std::make_shared<DenseAdapter>(layers[i]));
    dense_ms = median_ms(forward, repeats);
  }
  model->clear_adapters();

  auto j = common(o);
  j["mode"] = "model";
  j["device"] = o.device;
  j["d_ff"] = c.d_ff;
  j["layers"] = o.layers;
  j["vocab"] = c.vocab_size;
  j["batch"] = o.batch;
  j["seq"] = o.seq;
  j["routed_modules"] = modules;
  j["base_ms"] = base_ms;
  j["routed_ms"] = routed_ms;
  j["dense_ms"] = dense_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(dense_ms);
  j["routed_over_base"] = timed.b_over_a;  // the median of alternated rounds' ratios
  j["dense_over_base"] = dense_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(dense_ms / base_ms);
  j["index"] = o.index;
  j["families"] = o.families;
  j["token_tasks"] = o.token_tasks;
  j["factor_dtype"] = o.factor_dtype;
  j["update"] = o.update;
  if (ivf) {
    j["exact_ms"] = exact_timed.b_ms;
    j["exact_over_base"] = exact_timed.b_over_a;
    j["clusters"] = clusters;
    j["probe"] = probe;
    j["probe_margin"] = margin_json(o.probe_margin);
    j["index_build_ms"] = build_ms;
    // Over every routed module's inputs in one forward of the indexed model.
    j["recall"] = tally.tokens > 0 ? tally.hits / tally.tokens : 1.0;
    j["candidates_per_token"] = tally.tokens > 0 ? tally.candidates / tally.tokens : 0.0;
    j["clusters_per_token"] = tally.tokens > 0 ? tally.probed / tally.tokens : 0.0;
    // Which projections the misses come from: the same kind of module in every block.
    auto& kinds = j["recall_by_module_kind"] = nlohmann::ordered_json::object();
    for (const auto& [kind, t] : by_kind)
      kinds[kind] = {{"recall", t.tokens > 0 ? t.hits / t.tokens : 1.0},
                     {"candidates_per_token", t.tokens > 0 ? t.candidates / t.tokens : 0.0}};
  }
  // Summed over modules, per token through each (the LM head and attention are outside it).
  j["cost_model"] = {{"linear_macs_per_token", base_macs},
                     {"routing_macs_per_token", extra_macs},
                     {"linears_routed_over_base", 1 + static_cast<double>(extra_macs) / base_macs}};
  j["expert_bytes"] = expert_bytes;
  j["experts_shared_across_modules"] = share;
  j["base_bytes"] = model->num_parameters() * 4;
  j["peak_rss_bytes"] = peak_rss_bytes();
  // Tokens on both sides; the base's matmul FLOPs (t5_pass_flops: projections, attention, LM head).
  add_gpu_figures(j, o, 2.0 * static_cast<double>(tokens), t5_pass_flops(c, o.batch, o.seq, o.seq).total(), base_ms,
                  routed_ms);
  print(j, o.json);
  return 0;
}

}  // namespace

Runner setup_bench_route(CLI::App& sub) {
  auto o = std::make_shared<RouteBenchOptions>();
  sub.add_option("--experts", o->experts, "N, experts in the pool")->capture_default_str();
  sub.add_option("--top-k", o->top_k, "k, experts per token")->capture_default_str();
  sub.add_option("--rank", o->rank, "r, LoRA rank")->capture_default_str();
  sub.add_option("--d-model", o->d_model, "Model width (d_in = d_out for --layer)")->capture_default_str();
  sub.add_option("--tokens", o->tokens, "Tokens through the layer (--layer)")->capture_default_str();
  sub.add_flag("--layer", o->layer, "Time one routed linear layer instead of the full model");
  sub.add_option("--d-ff", o->d_ff, "Feed-forward width (model)")->capture_default_str();
  sub.add_option("--layers", o->layers, "Encoder and decoder blocks each (model)")->capture_default_str();
  sub.add_option("--heads", o->heads, "Attention heads (model)")->capture_default_str();
  sub.add_option("--batch", o->batch, "Sequences per batch (model)")->capture_default_str();
  sub.add_option("--seq", o->seq, "Tokens per sequence on each side (model)")->capture_default_str();
  sub.add_option("--vocab", o->vocab, "Vocabulary (model)")->capture_default_str();
  sub.add_option("--repeats", o->repeats, "Timed repetitions, median reported (0: 7 layer, 3 model)");
  sub.add_flag("--no-dense", o->no_dense, "Skip the dense implementation");
  sub.add_option("--dense-max-gb", o->dense_max_gb, "Skip dense when its [T, N*r] buffer exceeds this")->capture_default_str();
  sub.add_flag("--json", o->json, "One JSON object on stdout");
  sub.add_option("--index", o->index,
                 "Routing: exact, or ivf (probe the best --probe of --clusters clusters; exact_ms and recall are "
                 "measured beside it)")
      ->check(CLI::IsMember({"exact", "ivf"}))
      ->capture_default_str();
  sub.add_option("--clusters", o->clusters, "ivf: clusters (0: round(sqrt(N)))")->capture_default_str();
  sub.add_option("--probe", o->probe, "ivf: clusters probed per token")->capture_default_str();
  sub.add_option("--probe-margin", o->probe_margin,
                 "ivf: probe a cluster after a token's best only if its centroid score is within this of the best's "
                 "(a logit gap; default: no margin, --probe clusters for every token)");
  sub.add_option("--families", o->families,
                 "Synthetic gates around this many random centres (0: independent gates)")->capture_default_str();
  sub.add_option("--token-signal", o->token_signal,
                 "--layer tokens: this times a random expert's key plus N(0, 1) noise (0: noise only)")
      ->capture_default_str();
  sub.add_option("--token-tasks", o->token_tasks,
                 "--layer tokens: draw --token-signal's experts from this many, as a batch from a few tasks "
                 "(0: from all). The model (needs --families F): F tasks of 64 token ids each, every family's "
                 "gates around the direction its task's tokens take at that module, the batch from this many tasks")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--factor-dtype", o->factor_dtype,
                 "The experts' LoRA factors in f32, or bf16 (half the bytes; as gaggle assemble "
                 "--factor-dtype bf16 stores them)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--share-experts", o->share_experts,
                 "Model: modules of one shape share one set of experts (and, without --token-tasks, one index): "
                 "the same compute in less memory. auto: where every module's own would exceed 6 GB")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  sub.add_option("--mapped", o->mapped,
                 "--layer: write the experts to DIR/experts.safetensors and route from its memory map, as an "
                 "assembled model does, its pages cold; reports the bytes the routed passes read from storage");
  sub.add_option("--device", o->device,
                 "cpu, cuda or cuda:N: where the model, tokens and experts live; on a GPU the JSON adds tokens/s "
                 "and the base's rate against that GPU's float32 GEMM")
      ->capture_default_str();
  sub.add_option("--update", o->update,
                 "The routed update: auto (the CPU's kernels on CPU float32, batched buckets of experts on a GPU), "
                 "per-expert (two LibTorch matmuls per chosen expert) or bucketed (a few batched matmuls); the last "
                 "two also on the CPU, with the decision as LibTorch ops")
      ->check(CLI::IsMember({"auto", "per-expert", "bucketed"}))
      ->capture_default_str();
  return [o]() -> int {
    if (o->layer && o->share_experts != "auto") {
      std::cerr << "gaggle-bench: error: --share-experts is for the model's modules; --layer times one\n";
      return 2;
    }
    if (!o->mapped.empty() && !o->layer) {
      std::cerr << "gaggle-bench: error: --mapped needs --layer\n";
      return 2;
    }
    if (o->top_k < 1 || o->experts < 1) {
      std::cerr << "gaggle-bench: error: --top-k and --experts must be at least 1\n";
      return 2;
    }
    if (!o->layer && o->token_signal > 0) {
      std::cerr << "gaggle-bench: error: --token-signal shapes --layer's synthetic tokens; the model routes its own "
                   "activations (add --layer, or shape the model's batch with --token-tasks and --families)\n";
      return 2;
    }
    if (!o->layer && o->token_tasks > 0 && o->families < 1) {
      std::cerr << "gaggle-bench: error: --token-tasks for the model needs --families: one task per family of gates\n";
      return 2;
    }
    if (o->device != "cpu" && (o->index == "ivf" || !o->mapped.empty())) {
      // The index's search and the memory-mapped factors are CPU code; on a GPU the
      // routed layer scores every key (design.md §5).
      std::cerr << "gaggle-bench: error: --index ivf and --mapped run on the CPU only; drop them for --device "
                << o->device << "\n";
      return 2;
    }
    model::configure_runtime({model::torch_threads(), o->device});  // an unknown or absent device: a clear error
    o->top_k = std::min(o->top_k, o->experts);  // N = 1: k = 1 (reported as top_k)
    return o->layer ? run_layer(*o) : run_model(*o);
  };
}

}  // namespace gaggle::bench
