#include "model/detail/hooked_linear.h"

#include <ATen/ATen.h>

namespace gaggle::model::detail {

HookedLinearImpl::HookedLinearImpl(std::int64_t d_in, std::int64_t d_out) {
  weight = register_parameter("weight", at::empty({d_out, d_in}, at::kFloat));
}

at::Tensor HookedLinearImpl::forward(const at::Tensor& u) {
  return adapter ? adapter->forward(u, weight) : at::linear(u, weight);
}

}  // namespace gaggle::model::detail

namespace gaggle::model {

at::Tensor LinearAdapter::forward(const at::Tensor& u, const at::Tensor& weight) {
  return apply(u, at::linear(u, weight));
}

}  // namespace gaggle::model
