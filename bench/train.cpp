// gaggle-bench train — train-expert throughput on a t5-small-sized model (random weights,
// random token ids: the cost does not depend on the values), through the same loop and
// loss as `gaggle train-expert` (or train-gate's step, --gate); its ratio to the GEMM
// roofline (the step's matmul FLOPs, bench/flops.h, at the GEMM rate measured in the same
// run); and the share of a step spent outside LibTorch kernels.
//
// "Outside kernels" = 1 - (time inside outermost aten:: operators, forward and backward,
// summed over threads) / (wall time of the profiled steps): what the autograd engine,
// the optimiser's bookkeeping, batching and our own code cost around the kernels.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>

#include "bench.h"
#include "flops.h"
#include "model/runtime.h"
#include "model/t5.h"
#include "train/detail/model_ops.h"
#include "train/loop.h"

namespace gaggle::bench {
namespace {

struct TrainBenchOptions {
  int64_t batch_size = 8;
  int64_t input_len = 64;
  int64_t target_len = 16;
  int64_t steps = 5;
  int64_t rank = 16;
  int64_t examples = 64;
  int64_t top = 0;
  bool gate = false;
};

train::TokenizedData random_data(const TrainBenchOptions& o, int64_t vocab) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> id(3, vocab - 101);
  train::TokenizedData d;
  for (int64_t i = 0; i < o.examples; ++i) {
    train::TokenizedExample e;
    for (int64_t t = 0; t + 1 < o.input_len; ++t) e.input.push_back(id(rng));
    e.input.push_back(1);
    for (int64_t t = 0; t + 1 < o.target_len; ++t) e.target.push_back(id(rng));
    e.target.push_back(1);
    d.examples.push_back(e);
  }
  return d;
}

// Time (µs) inside outermost aten:: ranges, over every thread's events; per op name in `by_name`.
double aten_outermost_us(const torch::autograd::profiler::thread_event_lists& lists,
                         std::map<std::string, double>& by_name) {
  using torch::autograd::profiler::EventKind;
  using torch::autograd::profiler::LegacyEvent;
  double total = 0;
  for (const auto& events : lists) {
    std::vector<const LegacyEvent*> stack;
    int aten_depth = 0;
    std::vector<bool> was_aten;
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        bool aten = std::string(e.name()).rfind("aten::", 0) == 0;
        if (aten && aten_depth == 0) stack.push_back(&e);
        was_aten.push_back(aten);
        aten_depth += aten;
      } else if (e.kind() == EventKind::PopRange) {
        if (was_aten.empty()) continue;
        bool aten = was_aten.back();
        was_aten.pop_back();
        aten_depth -= aten;
        if (aten && aten_depth == 0 && !stack.empty()) {
          double us = stack.back()->cpuElapsedUs(e);
          total += us;
          by_name[stack.back()->name()] += us;
          stack.pop_back();
        }
      }
    }
  }
  return total;
}

}  // namespace

Runner setup_bench_train(CLI::App& sub) {
  auto o = std::make_shared<TrainBenchOptions>();
  sub.add_option("--batch-size", o->batch_size, "Examples per step")->capture_default_str();
  sub.add_option("--input-len", o->input_len, "Input tokens per example")->capture_default_str();
  sub.add_option("--target-len", o->target_len, "Target tokens per example")->capture_default_str();
  sub.add_option("--steps", o->steps, "Timed optimiser steps")->capture_default_str();
  sub.add_option("--rank", o->rank, "LoRA rank")->capture_default_str();
  sub.add_option("--top", o->top, "Also list the N costliest aten operators")->capture_default_str();
  sub.add_flag("--gate", o->gate, "Time train-gate's step instead (A and B frozen, only the gates train)");
  return [o]() -> int {
    std::cout << describe_run();
    model::T5Config c;  // t5-small: d_model 512, 6+6 layers, 8 heads, d_ff 2048, relu, tied
    torch::manual_seed(0);
    auto t5 = model::make_t5(c);
    for (auto& p : t5->parameters()) p.set_requires_grad(false);
    peft::LoraOptions lo;
    lo.rank = o->rank;
    auto lora = train::detail::make_lora(*t5, "all", lo);
    if (o->gate) lora.set_mode(peft::LoraMode::gate);
    train::detail::attach(*t5, lora);
    auto data = random_data(*o, c.vocab_size);
    auto dir = std::filesystem::temp_directory_path() / ("gaggle-bench-train-" + std::to_string(::getpid()));

    train::LoopHooks hooks;
    hooks.num_examples = static_cast<int64_t>(data.examples.size());
    hooks.parameters = lora.trainable_parameters();
    hooks.named = lora.trainable_named();
    hooks.target_tokens = [&](const std::vector<int64_t>& idx) { return train::detail::target_tokens(data, idx); };
    hooks.loss = [&](const std::vector<int64_t>& idx) { return train::detail::batch_nll(*t5, data, idx); };
    train::LoopOptions lo2;
    lo2.batch_size = o->batch_size;
    lo2.eval_every = 0;
    lo2.save_every = 0;
    lo2.log_every = 1000000;
    lo2.work_dir = dir;

    lo2.steps = 1;  // warm-up (allocator, OpenMP pool)
    train::run_training(lo2, hooks);
    lo2.steps = o->steps;
    auto r = train::run_training(lo2, hooks);
    const double tps = r.tokens / r.seconds;

    namespace prof = torch::autograd::profiler;
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
    auto t0 = std::chrono::steady_clock::now();
    train::run_training(lo2, hooks);
    double wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    auto lists = prof::disableProfilerLegacy();
    std::map<std::string, double> by_name;
    double in_ops = aten_outermost_us(lists, by_name);
    std::filesystem::remove_all(dir);

    std::printf("model: t5-small-sized (%.1f M parameters), LoRA r=%lld on %zu linears (%.2f M trainable)\n",
                t5->num_parameters() / 1e6, static_cast<long long>(o->rank), lora.order().size(),
                [&] {
                  double n = 0;
                  for (auto& p : hooks.parameters) n += p.numel();
                  return n / 1e6;
                }());
    std::printf("batch %lld x (input %lld + target %lld tokens), %lld steps\n", static_cast<long long>(o->batch_size),
                static_cast<long long>(o->input_len), static_cast<long long>(o->target_len),
                static_cast<long long>(o->steps));
    const double step_s = r.seconds / static_cast<double>(o->steps);
    std::printf("%s: %.0f tokens/s, %.3f s/step\n", o->gate ? "train-gate" : "train-expert", tps, step_s);
    // The roofline: the step's matmul FLOPs (flops.h) at this machine's GEMM rate, measured now.
    const double flops = t5_lora_step_flops(c, static_cast<double>(o->batch_size), static_cast<double>(o->input_len),
                                            static_cast<double>(o->target_len), static_cast<double>(o->rank), o->gate);
    const auto gemm = model::measure_gemm(2048, 3);
    std::printf("roofline: %.1f GFLOP of matmuls per step, gemm 2048^2 %.1f GFLOP/s -> %.3f s/step ideal; "
                "achieved %.1f GFLOP/s = %.0f%% of the roofline\n",
                flops / 1e9, gemm.gflops, flops / 1e9 / gemm.gflops, flops / 1e9 / step_s,
                100.0 * flops / 1e9 / step_s / gemm.gflops);
    std::printf("outside LibTorch kernels: %.1f%% of a step (profiled: %.3f s/step, %.3f s in aten ops)\n",
                100.0 * (1.0 - in_ops / wall_us), wall_us / 1e6 / static_cast<double>(o->steps),
                in_ops / 1e6 / static_cast<double>(o->steps));
    std::vector<std::pair<double, std::string>> ops;
    for (const auto& [n, us] : by_name) ops.push_back({us, n});
    std::sort(ops.rbegin(), ops.rend());
    for (int64_t i = 0; i < o->top && i < static_cast<int64_t>(ops.size()); ++i)
      std::printf("  %-40s %8.3f s/step (%.1f%%)\n", ops[i].second.c_str(), ops[i].first / 1e6 / static_cast<double>(o->steps),
                  100.0 * ops[i].first / wall_us);
    return 0;
  };
}

}  // namespace gaggle::bench
