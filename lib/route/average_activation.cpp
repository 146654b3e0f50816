#include "route/average_activation.h"

#include <ATen/ATen.h>

#include "io/error.h"
#include "route/phatgoose.h"

namespace gaggle::route {

at::Tensor average_activation_keys(const at::Tensor& avg_act) {
  if (!avg_act.defined() || avg_act.dim() != 2)
    throw_error(ErrorCode::invalid, "route", "average-activation keys: activations must be [N, d_in]");
  return layer_norm_no_affine(avg_act.to(at::kDouble)).to(at::kFloat).contiguous();
}

}  // namespace gaggle::route
