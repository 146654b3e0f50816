#include "model/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "io/error.h"

namespace gaggle::model {

int hardware_threads() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int torch_threads() { return at::get_num_threads(); }

std::string torch_version() { return TORCH_VERSION; }

void configure_runtime(const RuntimeOptions& options) {
  if (options.threads < 0) throw_error(ErrorCode::usage, "model", "--threads must be 0 (all cores) or positive");
  at::set_num_threads(options.threads > 0 ? options.threads : hardware_threads());
  if (options.device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw_error(ErrorCode::unsupported, "model", "device '" + options.device + "' requested but CUDA is not available",
                  "this build or machine has no CUDA GPU; use --device cpu");
  } else if (options.device != "cpu") {
    throw_error(ErrorCode::usage, "model", "unknown device '" + options.device + "'", "use --device cpu or --device cuda");
  }
}

std::string loaded_blas_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("libblas") != std::string::npos || path.find("openblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos)
      return path;
  }
  return "";
}

GemmMeasurement measure_gemm(int n, int repeats, const std::string& device) {
  torch::NoGradGuard no_grad;
  const torch::Device where(device);
  // Kernels on a GPU run asynchronously: a timing must wait for them to finish.
  auto wait = [&] {
    if (where.is_cuda()) torch::cuda::synchronize(where.has_index() ? where.index() : -1);
  };
  auto a = torch::randn({n, n}, torch::TensorOptions().device(where));
  auto b = torch::randn({n, n}, torch::TensorOptions().device(where));
  auto c = torch::mm(a, b);  // warm-up
  wait();
  std::vector<double> times;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    wait();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  GemmMeasurement m;
  m.n = n;
  m.threads = where.is_cpu() ? at::get_num_threads() : 0;
  m.seconds = times[times.size() / 2];
  m.gflops = 2.0 * n * n * static_cast<double>(n) / m.seconds / 1e9;
  return m;
}

}  // namespace gaggle::model
