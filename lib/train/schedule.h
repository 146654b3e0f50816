#pragma once
// The paper's learning-rate schedule: linear warm-up over the first `warmup_fraction`
// of the steps, then constant (design.md §2: 6% warm-up, then constant).
#include <cmath>
#include <cstdint>

namespace gaggle::train {

struct WarmupConstant {
  double peak_lr = 5e-3;
  int64_t total_steps = 1000;
  double warmup_fraction = 0.06;

  int64_t warmup_steps() const {
    return static_cast<int64_t>(std::llround(warmup_fraction * static_cast<double>(total_steps)));
  }
  // The rate of optimiser step `step` (0-based): peak * (step + 1) / warmup during the
  // warm-up, so the first step already moves, and exactly peak afterwards.
  double lr_at(int64_t step) const {
    int64_t w = warmup_steps();
    if (w <= 0 || step >= w) return peak_lr;
    return peak_lr * static_cast<double>(step + 1) / static_cast<double>(w);
  }
};

}  // namespace gaggle::train
