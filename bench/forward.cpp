// gaggle-bench forward — T5 forward throughput on a t5-small-sized random model, and the
// ratio to this machine's matmul roofline (issue #3): achieved GFLOP/s over measured
// GEMM GFLOP/s, with the model's matmul FLOPs counted exactly (projections, attention
// scores and weighted sums, LM head).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "bench.h"
#include "flops.h"
#include "model/runtime.h"
#include "model/t5.h"

namespace gaggle::bench {

namespace {

struct ForwardOptions {
  std::int64_t batch = 32, source_len = 128, target_len = 128;
  std::int64_t d_model = 512, layers = 6, d_ff = 2048, heads = 8, vocab = 32128;
  int repeats = 3;
  bool relu = false;
  std::string device = "cpu";
};

}  // namespace

Runner setup_bench_forward(CLI::App& sub) {
  auto o = std::make_shared<ForwardOptions>();
  sub.add_option("--batch", o->batch, "Sequences per batch")->capture_default_str();
  sub.add_option("--source-len", o->source_len, "Encoder tokens per sequence")->capture_default_str();
  sub.add_option("--target-len", o->target_len, "Decoder tokens per sequence (teacher forced)")->capture_default_str();
  sub.add_option("--d-model", o->d_model, "Model width")->capture_default_str();
  sub.add_option("--layers", o->layers, "Encoder and decoder blocks each")->capture_default_str();
  sub.add_option("--d-ff", o->d_ff, "Feed-forward width")->capture_default_str();
  sub.add_option("--heads", o->heads, "Attention heads (d_kv = d_model / heads)")->capture_default_str();
  sub.add_option("--vocab", o->vocab, "Vocabulary size")->capture_default_str();
  sub.add_flag("--relu", o->relu, "T5 v1.0 ReLU feed-forward instead of gated GELU");
  sub.add_option("--repeats", o->repeats, "Timed repetitions (the median is reported)")->capture_default_str();
  sub.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  return [o]() -> int {
    std::cout << describe_run();
    model::configure_runtime({model::torch_threads(), o->device});
    model::T5Config c;
    c.vocab_size = o->vocab, c.d_model = o->d_model, c.d_kv = o->d_model / o->heads, c.d_ff = o->d_ff;
    c.num_layers = c.num_decoder_layers = o->layers, c.num_heads = o->heads, c.gated = !o->relu;
    c.tie_word_embeddings = o->relu;
    at::manual_seed(0);
    auto model = model::make_t5(c);
    model->eval();
    at::Device device(o->device);
    model->to(device);
    auto ids = at::randint(2, c.vocab_size, {o->batch, o->source_len}, at::kLong).to(device);
    auto mask = at::ones({o->batch, o->source_len}, at::kLong).to(device);
    auto dec = at::randint(2, c.vocab_size, {o->batch, o->target_len}, at::kLong).to(device);
    const bool cuda = device.is_cuda();
    auto sync = [&](const at::Tensor& t) { if (cuda) t.to(at::kCPU); };  // waits for the stream
    const double flops = t5_pass_flops(c, o->batch, o->source_len, o->target_len).total();
    // The GEMM roofline is measured right before each timed forward, so that a busy
    // machine moves both figures together; the ratio is the median of the per-run ratios.
    std::vector<double> times, gemms, ratios;
    model::GemmMeasurement g;
    {
      c10::InferenceMode guard;
      sync(model->forward(ids, mask, dec));  // warm-up
      for (int i = 0; i < std::max(1, o->repeats); ++i) {
        g = model::measure_gemm(cuda ? 8192 : 2048, 3, o->device);  // the GEMM of the device that runs the forward
        auto t0 = std::chrono::steady_clock::now();
        auto logits = model->forward(ids, mask, dec);
        sync(logits.sum());
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        gemms.push_back(g.gflops);
        ratios.push_back(flops / times.back() / 1e9 / g.gflops);
      }
    }
    std::sort(times.begin(), times.end());
    std::sort(gemms.begin(), gemms.end());
    std::sort(ratios.begin(), ratios.end());
    const double t = times[times.size() / 2];
    g.gflops = gemms[gemms.size() / 2];
    const double tokens = static_cast<double>(o->batch) * (o->source_len + o->target_len);
    std::printf("model: d_model %lld, %lld+%lld layers, d_ff %lld, %lld heads, %s, vocab %lld, %.1f M parameters\n",
                (long long)c.d_model, (long long)c.num_layers, (long long)c.num_decoder_layers, (long long)c.d_ff,
                (long long)c.num_heads, c.gated ? "gated-gelu" : "relu", (long long)c.vocab_size, model->num_parameters() / 1e6);
    std::printf("batch: %lld x (%lld encoder + %lld decoder) tokens, float32, %s, InferenceMode\n", (long long)o->batch,
                (long long)o->source_len, (long long)o->target_len, o->device.c_str());
    std::printf("forward: %.3f s median of %zu (min %.3f s)\n", t, times.size(), times.front());
    std::printf("throughput: %.0f tokens/s (encoder + decoder tokens), %.1f sequences/s\n", tokens / t, o->batch / t);
    std::printf("compute: %.1f GFLOP per forward, %.1f GFLOP/s achieved\n", flops / 1e9, flops / t / 1e9);
    const std::string where =
        cuda ? "(" + o->device + ", float32)" : "on " + std::to_string(g.threads) + " threads (cpu)";
    std::printf("roofline: gemm %d^2 %.1f GFLOP/s median %s -> %.0f tokens/s ideal\n", g.n, g.gflops, where.c_str(),
                tokens / (flops / (g.gflops * 1e9)));
    std::printf("ratio to roofline: %.2f (median of per-run ratios; min %.2f, max %.2f)\n", ratios[ratios.size() / 2],
                ratios.front(), ratios.back());
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    std::printf("OMP_WAIT_POLICY: %s\n", wait ? wait : "unset (threads spin between parallel regions; on a busy machine "
                                                      "OMP_WAIT_POLICY=PASSIVE can be several times faster)");
    return 0;
  };
}

}  // namespace gaggle::bench
