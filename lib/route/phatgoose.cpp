#include "route/phatgoose.h"

#include <ATen/ATen.h>

#include <cmath>

#include "io/error.h"

namespace gaggle::route {

at::Tensor layer_norm_no_affine(const at::Tensor& x, double eps) {
  auto mean = x.mean(-1, /*keepdim=*/true);
  auto centred = x - mean;
  auto var = (centred * centred).mean(-1, /*keepdim=*/true);
  return centred / at::sqrt(var + eps);
}

at::Tensor layer_norm_scores(const at::Tensor& u, const at::Tensor& keys, double eps) {
  const std::int64_t d_in = u.size(-1);
  auto scale = at::full({d_in}, 1.0 / std::sqrt(static_cast<double>(d_in)), u.options().requires_grad(false));
  auto x = at::layer_norm(u, {d_in}, scale, {}, eps);
  return at::matmul(x, keys.to(x.scalar_type()).t());
}

at::Tensor phatgoose_keys(const at::Tensor& gates) {
  if (!gates.defined() || gates.dim() != 2)
    throw_error(ErrorCode::invalid, "route", "phatgoose keys: gate vectors must be [N, d_in]");
  return layer_norm_no_affine(gates.to(at::kDouble)).to(at::kFloat).contiguous();
}

}  // namespace gaggle::route
