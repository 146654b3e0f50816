#pragma once
// Average-activation routing keys (design.md §2 baselines): the module's input activation
// averaged over an expert's training data (stored in the bundle as `<module>.avg_act`),
// normalised once like PHATGOOSE gates and routed exactly like PHATGOOSE.
#include <ATen/core/Tensor.h>

namespace gaggle::route {

// avg_act [N, d_in] -> keys [N, d_in] float32. Throws Error{invalid} unless 2-D.
at::Tensor average_activation_keys(const at::Tensor& avg_act);

}  // namespace gaggle::route
