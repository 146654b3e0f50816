// gaggle-bench — the benchmark runner. One subcommand per benchmark (bench/<name>.cpp).
#include <malloc.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "bench.h"
#include "io/error.h"
#include "model/runtime.h"

namespace gaggle::bench {

Runner setup_bench_gemm(CLI::App& sub);
Runner setup_bench_route(CLI::App& sub);
Runner setup_bench_forward(CLI::App& sub);
Runner setup_bench_train(CLI::App& sub);
Runner setup_bench_assemble(CLI::App& sub);
Runner setup_bench_kernels(CLI::App& sub);

namespace {

struct Benchmark {
  const char* name;
  const char* summary;
  SetupFn setup;
};

const Benchmark kBenchmarks[] = {
    {"gemm", "float32 matmul GFLOP/s: this machine's roofline for the other figures", setup_bench_gemm},
    {"route", "Routed vs base vs dense: one layer (--layer) or a t5-small forward, N experts", setup_bench_route},
    {"forward", "T5 forward tokens/s (t5-small size) and the ratio to the GEMM roofline", setup_bench_forward},
    {"train", "train-expert tokens/s (t5-small size) and the share of a step outside LibTorch kernels", setup_bench_train},
    {"assemble", "Incremental assembly (assemble --update, one expert added) against a fresh assemble", setup_bench_assemble},
    {"kernels", "The routed layer's score and update kernels against the BLAS, one thread", setup_bench_kernels},
};

std::string g_command_line;

}  // namespace

const std::string& command_line() { return g_command_line; }

std::string describe_run() {
  std::ostringstream s;
  s << "command: " << g_command_line << "\n"
    << "threads: " << model::torch_threads() << " (machine: " << model::hardware_threads() << ")\n"
    << "blas: " << model::loaded_blas_library() << "\n";
  if (const char* core = std::getenv("OPENBLAS_CORETYPE")) s << "OPENBLAS_CORETYPE: " << core << " (can halve OpenBLAS speed)\n";
  return s.str();
}

}  // namespace gaggle::bench

int main(int argc, char** argv) {
  using namespace gaggle::bench;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  for (int i = 0; i < argc; ++i) g_command_line += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"gaggle-bench — gaggle's benchmarks", "gaggle-bench"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "Compute threads (0 = every core)");
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const auto& b : kBenchmarks) {
    CLI::App* sub = app.add_subcommand(b.name, b.summary);
    runners.emplace_back(sub, b.setup(*sub));
  }
  CLI11_PARSE(app, argc, argv);
  try {
    gaggle::model::configure_runtime({threads, "cpu"});
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const gaggle::Error& e) {
    std::cerr << "gaggle-bench: error: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
