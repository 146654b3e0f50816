#include "route/arrow.h"

#include <ATen/ATen.h>

#include "io/error.h"

namespace gaggle::route {

at::Tensor arrow_keys(const at::Tensor& A, const at::Tensor& B) {
  if (!A.defined() || !B.defined() || A.dim() != 3 || B.dim() != 3 || A.size(0) != B.size(0) || A.size(1) != B.size(2))
    throw_error(ErrorCode::invalid, "route", "arrow keys: need A [N, r, d_in] and B [N, d_out, r]");
  auto a = A.to(at::kDouble);
  auto b = B.to(at::kDouble);
  // Batched thin QR of Aᵀ: [N, d_in, r] = Q [N, d_in, r] · R [N, r, r].
  auto qr = at::linalg_qr(a.transpose(1, 2), "reduced");
  auto q = std::get<0>(qr);
  auto r = std::get<1>(qr);
  auto small = at::bmm(b, r.transpose(1, 2));  // B Rᵀ: [N, d_out, r]
  auto svd = at::linalg_svd(small, /*full_matrices=*/false);
  auto vh = std::get<2>(svd);                                           // [N, r, r], rows = right singular vectors
  auto top = vh.select(1, 0).unsqueeze(2);                              // [N, r, 1]
  auto keys = at::bmm(q, top).squeeze(2);                               // [N, d_in]
  keys = keys / keys.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-300);  // unit norm (Q has orthonormal columns)
  auto pivot = keys.gather(1, keys.abs().argmax(1, /*keepdim=*/true));
  keys = keys * at::where(pivot < 0, at::full_like(pivot, -1.0), at::ones_like(pivot));
  return keys.to(at::kFloat).contiguous();
}

}  // namespace gaggle::route
