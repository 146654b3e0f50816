#include "model/detail/hooked_linear.h"

#include <ATen/ATen.h>

namespace gaggle::model::detail {

HookedLinearImpl::HookedLinearImpl(std::int64_t d_in, std::int64_t d_out) {
  weight = register_parameter("weight", at::empty({d_out, d_in}, at::kFloat));
}

at::Tensor HookedLinearImpl::forward(const at::Tensor& u) {
  at::Tensor y = at::linear(u, weight);
  return adapter ? adapter->apply(u, y) : y;
}

}  // namespace gaggle::model::detail
