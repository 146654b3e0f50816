// gaggle-bench gemm — the float32 matmul roofline of this machine.
#include <cstdio>
#include <iostream>

#include "bench.h"
#include "model/runtime.h"

namespace gaggle::bench {

Runner setup_bench_gemm(CLI::App& sub) {
  auto n = std::make_shared<int>(1024);
  auto repeats = std::make_shared<int>(10);
  auto device = std::make_shared<std::string>("cpu");
  sub.add_option("--n", *n, "Matrix size");
  sub.add_option("--repeats", *repeats, "Timed repetitions (the median is reported)");
  sub.add_option("--device", *device, "cpu, cuda or cuda:N")->capture_default_str();
  return [n, repeats, device]() -> int {
    std::cout << describe_run();
    model::configure_runtime({model::torch_threads(), *device});
    auto m = model::measure_gemm(*n, *repeats, *device);
    if (m.threads > 0)
      std::printf("gemm %dx%d float32: %.2f ms, %.1f GFLOP/s on %d threads\n", m.n, m.n, m.seconds * 1e3, m.gflops,
                  m.threads);
    else
      std::printf("gemm %dx%d float32 on %s: %.3f ms, %.1f GFLOP/s\n", m.n, m.n, device->c_str(), m.seconds * 1e3,
                  m.gflops);
    return 0;
  };
}

}  // namespace gaggle::bench
