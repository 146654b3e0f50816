#pragma once
// Comparing tensors in the torch tests.
#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace gaggle::test {

// The largest absolute difference between two tensors of one shape, computed in double.
// Shapes must match: broadcasting would compare something other than what was meant.
inline double max_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) {
    throw std::invalid_argument("max_diff: shapes differ: " + std::string(c10::str(a.sizes())) + " and " +
                                std::string(c10::str(b.sizes())));
  }
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace gaggle::test
