#include "route/merged.h"

#include <ATen/ATen.h>

#include "io/error.h"

namespace gaggle::route {

MergedLinear::MergedLinear(const at::Tensor& A, const at::Tensor& B, double lora_scale, MergeForm form) {
  if (!A.defined() || !B.defined() || A.dim() != 3 || B.dim() != 3 || A.size(0) != B.size(0) ||
      A.size(1) != B.size(2) || A.size(0) < 1)
    throw_error(ErrorCode::invalid, "route", "merged experts: need A [N, r, d_in] and B [N, d_out, r] with N >= 1");
  const std::int64_t n = A.size(0), r = A.size(1);
  d_in_ = A.size(2);
  d_out_ = B.size(1);
  const double expert_scale = lora_scale > 0 ? lora_scale : 1.0 / static_cast<double>(r);
  at::NoGradGuard no_grad;
  if (form == MergeForm::factors) {
    // One rank-r expert whose factors are the means; averaged in double, kept in A's dtype.
    a_cat_ = A.to(at::kDouble).mean(0).to(A.scalar_type()).contiguous();
    b_cat_ = (B.to(at::kDouble).mean(0) * expert_scale).to(B.scalar_type()).contiguous();
    return;
  }
  const double scale = expert_scale / static_cast<double>(n);
  auto a_cat = A.reshape({n * r, d_in_});
  auto b_cat = B.permute({1, 0, 2}).reshape({d_out_, n * r});
  if (n * r * (d_in_ + d_out_) > d_in_ * d_out_) {
    delta_ = (at::mm(b_cat.to(at::kDouble), a_cat.to(at::kDouble)) * scale).to(A.scalar_type()).contiguous();
  } else {
    a_cat_ = a_cat.contiguous();
    b_cat_ = (b_cat * scale).contiguous();
  }
}

at::Tensor MergedLinear::update(const at::Tensor& u) const {
  if (u.size(-1) != d_in_)
    throw_error(ErrorCode::invalid, "route", "merged experts: input has width " + std::to_string(u.size(-1)) +
                                                 ", expected d_in " + std::to_string(d_in_));
  if (delta_.defined()) return at::matmul(u, delta_.t());
  return at::matmul(at::matmul(u, a_cat_.t()), b_cat_.t());
}

at::Tensor MergedLinear::apply(const at::Tensor& u, const at::Tensor& base_out) { return base_out + update(u); }

}  // namespace gaggle::route
