// gaggle-bench kernels — the routed layer's own kernels against the BLAS, one thread.
//
// The layer benchmarks (`route --layer`) time whole passes on every core, and on a shared
// machine those move by 10-30% between runs. This one times each kernel alone on one
// thread and keeps the fastest of its repeats, so a change to a kernel shows as a change
// in its rate: the score kernel (route/detail/packed_keys.h) against the BLAS on the shape
// the exact router gives it, the same for an ivf cluster's scattered tokens, and the
// one-pass expert update (route/detail/lora_rows.h), each next to the single-thread rate
// of the base layer's GEMM, the rate the cost model prices every multiply-add at. The
// rest of the routing decision (token moments, top-k, the softmax's normaliser) does no
// multiply-adds the cost model counts, and is timed in nanoseconds per token. The update
// runs twice, with each expert's own factors and with one expert's for all, and a plain
// streaming read gives the memory rate to hold the factors' first touch against.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench.h"
#include "route/detail/cblas.h"
#include "route/detail/fused_routing.h"
#include "route/detail/lora_rows.h"
#include "route/detail/packed_keys.h"
#include "route/detail/topk.h"

namespace gaggle::bench {
namespace {

struct KernelsOptions {
  std::int64_t tokens = 4096, d = 512, keys = 166;
  std::int64_t clusters = 40, cluster_keys = 100, cluster_tokens = 205;  // ivf at 10,000 experts, 16 tasks
  std::int64_t experts = 8, rank = 16;
  int top_k = 2;
  int repeats = 7;
  bool json = false;
};

// The fastest of `repeats` runs of f, in milliseconds.
template <typename F>
double fastest_ms(int repeats, F&& f) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// The sum of n (a multiple of 8) words in eight independent chains: a read that runs at
// the memory's rate, not at the latency of one chain of adds.
std::uint64_t sum_words(const std::uint64_t* w, std::size_t n) {
  std::uint64_t sum[8] = {};
  for (std::size_t i = 0; i < n; i += 8)
    for (int k = 0; k < 8; ++k) sum[k] += w[i + k];
  return std::accumulate(sum, sum + 8, std::uint64_t{0});
}

double gflops(double multiply_adds, double ms) { return 2.0 * multiply_adds / (ms * 1e6); }

std::vector<float> normal_values(std::int64_t count, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(count));
  for (auto& x : v) x = normal(gen);
  return v;
}

const char* kernel_name(route::detail::ScoreKernel k) {
  return k == route::detail::ScoreKernel::avx512 ? "avx512" : "avx2";
}

int run_kernels(const KernelsOptions& o) {
  using route::detail::PackedKeys;
  using route::detail::ScoreKernel;
  const route::detail::SgemmFn sgemm = route::detail::row_major_sgemm();
  if (!sgemm) {
    std::cerr << "gaggle-bench kernels: no CBLAS sgemm is loaded in this process (an MKL LibTorch?)\n";
    return 1;
  }
  route::detail::SingleThreadedBlas one_thread;
  std::mt19937 gen(0);
  const std::int64_t t = o.tokens, d = o.d;
  const auto u = normal_values(t * d, gen);
  nlohmann::json j;
  j["threads"] = 1, j["tokens"] = t, j["d"] = d, j["repeats"] = o.repeats;

  // The base layer's GEMM: [T, d] x [d, d]^T.
  {
    const auto w = normal_values(d * d, gen);
    std::vector<float> out(t * d);
    const double ms = fastest_ms(o.repeats, [&] { sgemm(false, true, t, d, d, 1.0f, u.data(), d, w.data(), d, 0.0f, out.data(), d); });
    j["base_gemm_ms"] = ms, j["base_gemm_gflops"] = gflops(double(t) * d * d, ms);
  }

  std::vector<ScoreKernel> kernels;
  for (ScoreKernel k : {ScoreKernel::avx2, ScoreKernel::avx512})
    if (route::detail::score_kernel_runs(k)) kernels.push_back(k);

  // The exact router's scores: each block of 128 tokens against every key.
  {
    const std::int64_t n = o.keys, block = 128;
    const auto keys = normal_values(n * d, gen);
    std::vector<float> raw(t * n);
    const double macs = double(t) * n * d;
    const double blas_ms = fastest_ms(o.repeats, [&] {
      for (std::int64_t lo = 0; lo < t; lo += block)
        sgemm(false, true, std::min(block, t - lo), n, d, 1.0f, u.data() + lo * d, d, keys.data(), d, 0.0f,
              raw.data() + lo * n, n);
    });
    j["scores"]["keys"] = n;
    j["scores"]["blas_ms"] = blas_ms, j["scores"]["blas_gflops"] = gflops(macs, blas_ms);
    for (ScoreKernel k : kernels) {
      const PackedKeys packed(keys.data(), n, d, k);
      const double ms = fastest_ms(o.repeats, [&] { packed.scores(u.data(), t, raw.data(), n); });
      j["scores"][std::string(kernel_name(k)) + "_ms"] = ms;
      j["scores"][std::string(kernel_name(k)) + "_gflops"] = gflops(macs, ms);
    }

    // The rest of the decision on these scores (detail/fused_routing.h): each token's
    // moments, then the top-k with its weights (scores transformed, the normaliser summed),
    // and the top-k scan alone, over rows of transformed scores.
    std::vector<float> mean(t), rstd(t), key_sum(n), weight(t * o.top_k), best_v(o.top_k);
    std::vector<std::int64_t> index(t * o.top_k), best_i(o.top_k);
    route::detail::key_sums(keys.data(), n, d, key_sum.data());
    route::detail::ScoreTransform transform;
    transform.scale = 1.0 / std::sqrt(static_cast<double>(d));
    transform.key_sum = key_sum.data();
    const double moments_ms =
        fastest_ms(o.repeats, [&] { route::detail::row_moments(u.data(), t, d, 1e-6, mean.data(), rstd.data()); });
    const double select_ms = fastest_ms(o.repeats, [&] {
      route::detail::select_top_k(raw.data(), t, n, mean.data(), rstd.data(), transform, o.top_k, 1e-6,
                                  /*keep_scores=*/false, index.data(), weight.data());
    });
    route::detail::select_top_k(raw.data(), t, n, mean.data(), rstd.data(), transform, o.top_k, 1e-6,
                                /*keep_scores=*/true, index.data(), weight.data());  // raw now holds the scores
    const double topk_ms = fastest_ms(o.repeats, [&] {
      for (std::int64_t row = 0; row < t; ++row)
        route::detail::topk_row(raw.data() + row * n, n, o.top_k, best_v.data(), best_i.data());
    });
    const double ns_per_token = 1e6 / static_cast<double>(t);
    j["select"]["top_k"] = o.top_k;
    j["select"]["moments_ns_per_token"] = moments_ms * ns_per_token;
    j["select"]["select_ns_per_token"] = select_ms * ns_per_token;
    j["select"]["topk_ns_per_token"] = topk_ms * ns_per_token;
  }

  // An ivf index's probed clusters: each cluster's tokens, scattered through the batch,
  // against its keys. The BLAS needs the rows gathered (and normalised, as the router
  // does) and its products copied to each token's candidate scores; the kernel reads the
  // rows in place and writes the products where they go.
  {
    const std::int64_t c_count = o.clusters, size = o.cluster_keys, per = std::min(o.cluster_tokens, t);
    const auto keys = normal_values(c_count * size * d, gen);
    std::vector<std::vector<std::int64_t>> tokens(c_count);
    std::vector<std::int64_t> all(t);
    std::iota(all.begin(), all.end(), 0);
    for (auto& list : tokens) {
      std::shuffle(all.begin(), all.end(), gen);
      list.assign(all.begin(), all.begin() + per);
      std::sort(list.begin(), list.end());
    }
    const std::int64_t width = 2 * size;  // two probed clusters' candidates per token
    std::vector<float> scores(t * width), gathered(per * d), product(per * size);
    const double macs = double(c_count) * per * size * d;
    const double blas_ms = fastest_ms(o.repeats, [&] {
      for (std::int64_t c = 0; c < c_count; ++c) {
        for (std::int64_t i = 0; i < per; ++i) {
          const float* row = u.data() + tokens[c][i] * d;
          float* q = gathered.data() + i * d;
          for (std::int64_t k = 0; k < d; ++k) q[k] = (row[k] - 0.5f) * 0.25f;
        }
        sgemm(false, true, per, size, d, 1.0f, gathered.data(), d, keys.data() + c * size * d, d, 0.0f,
              product.data(), size);
        for (std::int64_t i = 0; i < per; ++i)
          std::copy_n(product.data() + i * size, size, scores.data() + tokens[c][i] * width + c % 2 * size);
      }
    });
    j["clusters"]["clusters"] = c_count, j["clusters"]["keys_per_cluster"] = size, j["clusters"]["tokens_per_cluster"] = per;
    j["clusters"]["blas_gathered_ms"] = blas_ms, j["clusters"]["blas_gathered_gflops"] = gflops(macs, blas_ms);
    for (ScoreKernel k : kernels) {
      std::vector<std::unique_ptr<PackedKeys>> packed;
      for (std::int64_t c = 0; c < c_count; ++c)
        packed.push_back(std::make_unique<PackedKeys>(keys.data() + c * size * d, size, d, k));
      std::vector<const float*> in(per);
      std::vector<float*> out(per);
      const double ms = fastest_ms(o.repeats, [&] {
        for (std::int64_t c = 0; c < c_count; ++c) {
          for (std::int64_t i = 0; i < per; ++i) {
            in[i] = u.data() + tokens[c][i] * d;
            out[i] = scores.data() + tokens[c][i] * width + c % 2 * size;
          }
          packed[c]->scores(in.data(), per, out.data());
          for (std::int64_t i = 0; i < per; ++i)  // the LN transform the router applies in place
            for (std::int64_t e = 0; e < size; ++e) out[i][e] = (out[i][e] - 0.5f) * 0.25f;
        }
      });
      j["clusters"][std::string(kernel_name(k)) + "_in_place_ms"] = ms;
      j["clusters"][std::string(kernel_name(k)) + "_in_place_gflops"] = gflops(macs, ms);
    }
  }

  // The expert update: every token in two of `experts` experts, grouped by expert, added
  // in place into the output rows (as RoutedLinear::forward does).
  if (route::detail::lora_rows_supported(o.rank, d, d)) {
    const std::int64_t r = o.rank;
    std::vector<std::vector<float>> a, bt;
    for (std::int64_t e = 0; e < o.experts; ++e) {
      a.push_back(normal_values(r * d, gen));
      bt.push_back(normal_values(r * d, gen));
    }
    std::vector<std::vector<std::int64_t>> slots(o.experts);
    std::uniform_int_distribution<std::int64_t> pick(0, o.experts - 1);
    for (std::int64_t tok = 0; tok < t; ++tok) {
      const std::int64_t first = pick(gen);
      std::int64_t second = pick(gen);
      while (o.experts > 1 && second == first) second = pick(gen);
      slots[first].push_back(tok);
      if (second != first) slots[second].push_back(tok);
    }
    std::vector<float> out = normal_values(t * d, gen), weight(t, 0.5f);
    std::vector<std::uint8_t> started(t, 1);
    double macs = 0;
    for (const auto& s : slots) macs += 2.0 * double(s.size()) * r * d;
    // factors_of(e): the expert whose factors expert e's rows are multiplied with.
    auto update = [&](auto factors_of) {
      for (std::int64_t e = 0; e < o.experts; ++e) {
        const std::int64_t f = factors_of(e);
        route::detail::LoraRowsTarget target;
        target.a = a[f].data(), target.b = bt[f].data(), target.bt = bt[f].data();
        target.r = r, target.d_in = d, target.d_out = d;
        target.u = u.data(), target.base = out.data(), target.out = out.data(), target.started = started.data();
        route::detail::add_lora_rows(target, slots[e].data(), weight.data(), static_cast<std::int64_t>(slots[e].size()));
      }
    };
    const double ms = fastest_ms(o.repeats, [&] { update([](std::int64_t e) { return e; }); });
    // The same rows with one expert's factors for all: what the update costs once the
    // factors are in cache. The difference is the factors' first touch, which a pool
    // larger than the cache pays on every forward.
    const double hot_ms = fastest_ms(o.repeats, [&] { update([](std::int64_t) { return std::int64_t{0}; }); });
    j["update"]["experts"] = o.experts, j["update"]["rank"] = r;
    j["update"]["ms"] = ms, j["update"]["gflops"] = gflops(macs, ms);
    j["update"]["factor_bytes"] = o.experts * 2 * r * d * static_cast<std::int64_t>(sizeof(float));
    j["update"]["hot_factors_ms"] = hot_ms, j["update"]["hot_factors_gflops"] = gflops(macs, hot_ms);
  }

  // One thread streaming through 256 MiB: what the first touch of factors could run at if
  // it were a plain sequential read.
  {
    std::vector<std::uint64_t> big((256u << 20) / sizeof(std::uint64_t), 1);
    std::uint64_t sink = 0;
    const double ms = fastest_ms(std::max(3, o.repeats / 2), [&] { sink += sum_words(big.data(), big.size()); });
    j["stream_read_gb_per_s"] = static_cast<double>(big.size() * sizeof(std::uint64_t)) / (ms * 1e6);
    if (sink == 0) std::printf(" ");  // keeps the sums
  }

  if (o.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << describe_run();
  const double base = j["base_gemm_gflops"];
  auto line = [&](const char* what, double ms, double rate) {
    std::printf("  %-44s %8.2f ms  %6.1f GFLOP/s  %4.2f of the base GEMM's rate\n", what, ms, rate, rate / base);
  };
  std::printf("one thread, fastest of %d; %lld tokens, d = %lld\n", o.repeats, static_cast<long long>(t),
              static_cast<long long>(d));
  line("base GEMM [T, d] x [d, d]", j["base_gemm_ms"], base);
  std::printf("exact router's scores, %lld keys, blocks of 128 tokens:\n", static_cast<long long>(o.keys));
  line("BLAS", j["scores"]["blas_ms"], j["scores"]["blas_gflops"]);
  for (ScoreKernel k : kernels)
    line((std::string("packed keys, ") + kernel_name(k)).c_str(), j["scores"][std::string(kernel_name(k)) + "_ms"],
         j["scores"][std::string(kernel_name(k)) + "_gflops"]);
  std::printf("the rest of the decision, top-%d of %lld scores, per token:\n", o.top_k,
              static_cast<long long>(o.keys));
  std::printf("  %-44s %8.0f ns\n", "token moments (mean, rstd)", j["select"]["moments_ns_per_token"].get<double>());
  std::printf("  %-44s %8.0f ns\n", "top-k and weights (select_top_k)", j["select"]["select_ns_per_token"].get<double>());
  std::printf("  %-44s %8.0f ns\n", "  of which the top-k scan (topk_row)", j["select"]["topk_ns_per_token"].get<double>());
  std::printf("ivf clusters: %lld clusters of %lld keys, %lld scattered tokens each:\n",
              static_cast<long long>(o.clusters), static_cast<long long>(o.cluster_keys),
              static_cast<long long>(j["clusters"]["tokens_per_cluster"].get<std::int64_t>()));
  line("BLAS on gathered rows, products copied", j["clusters"]["blas_gathered_ms"], j["clusters"]["blas_gathered_gflops"]);
  for (ScoreKernel k : kernels)
    line((std::string("packed keys, ") + kernel_name(k) + ", rows in place").c_str(),
         j["clusters"][std::string(kernel_name(k)) + "_in_place_ms"],
         j["clusters"][std::string(kernel_name(k)) + "_in_place_gflops"]);
  if (j.contains("update")) {
    std::printf("expert update, %lld experts, rank %lld, two per token, in place:\n", static_cast<long long>(o.experts),
                static_cast<long long>(o.rank));
    line("one-pass update (lora_rows)", j["update"]["ms"], j["update"]["gflops"]);
    line("  one expert's factors for all (hot)", j["update"]["hot_factors_ms"],
         j["update"]["hot_factors_gflops"]);
    const double touch_ms = j["update"]["ms"].get<double>() - j["update"]["hot_factors_ms"].get<double>();
    const double factor_mib = j["update"]["factor_bytes"].get<double>() / (1 << 20);
    std::printf("  the factors' first touch: %.2f ms for %.1f MiB, %.1f GB/s\n", touch_ms, factor_mib,
                touch_ms > 0 ? j["update"]["factor_bytes"].get<double>() / (touch_ms * 1e6) : 0.0);
  }
  std::printf("streaming read, one thread, 256 MiB: %.1f GB/s\n", j["stream_read_gb_per_s"].get<double>());
  return 0;
}

}  // namespace

Runner setup_bench_kernels(CLI::App& sub) {
  auto o = std::make_shared<KernelsOptions>();
  sub.add_option("--tokens", o->tokens, "Token rows")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--d", o->d, "Row width (d_in = d_out)")->check(CLI::Range(8, 1 << 14));
  sub.add_option("--keys", o->keys, "Keys the exact router scores")->check(CLI::Range(1, 1 << 16));
  sub.add_option("--clusters", o->clusters, "ivf: probed clusters")->check(CLI::Range(1, 1 << 12));
  sub.add_option("--cluster-keys", o->cluster_keys, "ivf: keys per cluster")->check(CLI::Range(1, 1 << 14));
  sub.add_option("--cluster-tokens", o->cluster_tokens, "ivf: tokens probing each cluster")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--experts", o->experts, "update: experts (each token goes to two)")->check(CLI::Range(1, 1 << 12));
  sub.add_option("--rank", o->rank, "update: LoRA rank (a multiple of 8)")->check(CLI::Range(8, 256));
  sub.add_option("--top-k", o->top_k, "Experts per token the selection picks")->check(CLI::Range(1, 64));
  sub.add_option("--repeats", o->repeats, "Timed repetitions (the fastest is reported)")->check(CLI::Range(1, 1000));
  sub.add_flag("--json", o->json, "One JSON object instead of the table");
  return [o]() -> int { return run_kernels(*o); };
}

}  // namespace gaggle::bench
