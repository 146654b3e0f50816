#pragma once
// The compute runtime: thread count, device choice, and what BLAS LibTorch runs on.
// No torch types here, so cmd/ can include it cheaply.
#include <string>

namespace gaggle::model {

struct RuntimeOptions {
  int threads = 0;             // 0: every core of the machine (LibTorch itself detects 1 here)
  std::string device = "cpu";  // "cpu" or "cuda" / "cuda:N"
};

// Applies the thread count (torch::set_num_threads) and checks the device exists.
// Throws Error{unsupported} for cuda without a CUDA build or a GPU.
void configure_runtime(const RuntimeOptions& options);

int hardware_threads();
int torch_threads();
std::string torch_version();
// The BLAS shared object this process actually loaded (from /proc/self/maps), or "".
std::string loaded_blas_library();

struct GemmMeasurement {
  int n = 0;
  int threads = 0;     // CPU threads (0 for a GPU)
  double seconds = 0;  // median of the repeats
  double gflops = 0;
};
// Times an n×n float32 matmul on `device` ("cpu", "cuda" or "cuda:N"; a GPU's timing
// waits for the device, and threads is 0 there). Float32 as the models run: on a GPU
// that is LibTorch's default precision, not TF32.
GemmMeasurement measure_gemm(int n, int repeats, const std::string& device = "cpu");

}  // namespace gaggle::model
