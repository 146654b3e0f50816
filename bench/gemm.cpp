// gaggle-bench gemm — the float32 matmul roofline of this machine.
#include <cstdio>
#include <iostream>
#include <string>

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
    const std::string where = m.threads > 0 ? std::to_string(m.threads) + " threads" : *device;
    std::printf("gemm %dx%d float32: %.2f ms, %.1f GFLOP/s on %s\n", m.n, m.n, m.seconds * 1e3, m.gflops,
                where.c_str());
    return 0;
  };
}

}  // namespace gaggle::bench
