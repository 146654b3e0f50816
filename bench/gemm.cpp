// gaggle-bench gemm — the float32 matmul roofline of this machine.
#include <cstdio>
#include <iostream>

#include "bench.h"
#include "model/runtime.h"

namespace gaggle::bench {

Runner setup_bench_gemm(CLI::App& sub) {
  auto n = std::make_shared<int>(1024);
  auto repeats = std::make_shared<int>(10);
  sub.add_option("--n", *n, "Matrix size");
  sub.add_option("--repeats", *repeats, "Timed repetitions (the median is reported)");
  return [n, repeats]() -> int {
    std::cout << describe_run();
    auto m = model::measure_gemm(*n, *repeats);
    std::printf("gemm %dx%d float32: %.2f ms, %.1f GFLOP/s on %d threads\n", m.n, m.n, m.seconds * 1e3, m.gflops, m.threads);
    return 0;
  };
}

}  // namespace gaggle::bench
