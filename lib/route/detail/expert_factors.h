#pragma once
// Every expert's factors of a routed layer as raw pointers, for the CPU kernels
// (routed_linear.cpp's grouped update, routed_linear_forward.cpp's update per block).
// Torch-free.
#include <cstdint>
#include <vector>

#include "route/detail/lora_rows.h"

namespace gaggle::route::detail {

// float32 (a, b) or bfloat16 (a16, b16; the one-pass kernel only), the other pair empty.
struct ExpertFactors {
  const std::vector<const float*>& a;
  const std::vector<const float*>& b;
  const std::vector<const std::uint16_t*>& a16;
  const std::vector<const std::uint16_t*>& b16;

  std::int64_t size() const { return static_cast<std::int64_t>(a16.empty() ? a.size() : a16.size()); }
  // Points the kernel's target at expert e's factors.
  void point(LoraRowsTarget& target, std::int64_t e) const {
    if (a16.empty()) {
      target.a = a[e], target.b = b[e], target.a16 = nullptr, target.b16 = nullptr;
    } else {
      target.a = nullptr, target.b = nullptr, target.a16 = a16[e], target.b16 = b16[e];
    }
  }
};

}  // namespace gaggle::route::detail
