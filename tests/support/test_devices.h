#pragma once
// The devices the golden tests compare on (issue #15, item 4): "cpu" everywhere, and
// "cuda" where LibTorch sees a GPU, so that one ctest run on a GPU machine checks both.
// GAGGLE_TEST_REQUIRE_CUDA=1 (scripts/device-check sets it) lists "cuda" even where no
// GPU is seen: the test then fails on it with the loader's "CUDA is not available"
// instead of passing on the CPU alone.
#include <torch/cuda.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace gaggle::test {

inline std::vector<std::string> test_devices() {
  std::vector<std::string> devices{"cpu"};
  const char* require = std::getenv("GAGGLE_TEST_REQUIRE_CUDA");
  if (torch::cuda::is_available() || (require && std::string(require) == "1")) devices.push_back("cuda");
  return devices;
}

}  // namespace gaggle::test
