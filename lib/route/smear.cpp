#include "route/smear.h"

#include <ATen/ATen.h>

#include <string>

#include "io/error.h"
#include "route/detail/room.h"
#include "route/phatgoose.h"

namespace gaggle::route {
namespace {

void require_smear(bool ok, const std::string& message) {
  if (!ok) throw_error(ErrorCode::invalid, kRoom, "smear linear: " + message);
}

}  // namespace

SmearLinear::SmearLinear(at::Tensor A, at::Tensor B, at::Tensor keys, SmearOptions options)
    : A_(std::move(A)), B_(std::move(B)), keys_(std::move(keys)), options_(options) {
  require_smear(A_.defined() && B_.defined() && keys_.defined(), "A, B and keys must all be given");
  require_smear(A_.dim() == 3 && A_.size(0) >= 1 && A_.size(1) >= 1, "A must be [N, r, d_in]");
  n_ = A_.size(0);
  r_ = A_.size(1);
  d_in_ = A_.size(2);
  require_smear(B_.dim() == 3 && B_.size(0) == n_ && B_.size(2) == r_, "B must be [N, d_out, r]");
  d_out_ = B_.size(1);
  require_smear(keys_.dim() == 2 && keys_.size(0) == n_ && keys_.size(1) == d_in_, "keys must be [N, d_in]");
  scale_ = options_.lora_scale > 0 ? options_.lora_scale : 1.0 / static_cast<double>(r_);
  at::NoGradGuard no_grad;
  a_cat_ = A_.reshape({n_ * r_, d_in_}).contiguous();
  b_cat_ = (B_.permute({1, 0, 2}).reshape({d_out_, n_ * r_}) * scale_).contiguous();
}

void SmearLinear::set_tokens(const model::TokenContext& context) {
  has_context_ = true;
  mask_ = context.mask;
  causal_ = context.causal;
  offset_ = context.offset;
}

at::Tensor SmearLinear::merge_weights(const at::Tensor& u) {
  require_smear(has_context_, "applied before the model told it which tokens are real (model::TokenContext)");
  require_smear(u.dim() == 3 && u.size(2) == d_in_, "input must be [B, L, " + std::to_string(d_in_) +
                                                        "] (batch first), got width " + std::to_string(u.size(-1)));
  const std::int64_t batch = u.size(0), len = u.size(1);
  auto p = at::softmax(layer_norm_scores(u, keys_, options_.layer_norm_eps).to(at::kFloat), -1);  // [B, L, N]
  at::Tensor m;  // [B, L, 1]
  if (mask_.defined()) {
    require_smear(mask_.dim() == 2 && mask_.size(0) == batch && mask_.size(1) == len,
                  "the token mask is [" + std::to_string(mask_.size(0)) + ", " + std::to_string(mask_.size(-1)) +
                      "], the input has " + std::to_string(batch) + " x " + std::to_string(len) + " tokens");
    m = (mask_.to(p.device()) != 0).to(at::kFloat).unsqueeze(-1);
  } else {
    m = at::ones({batch, len, 1}, p.options());
  }
  auto weighted = p * m;
  if (!causal_) return weighted.sum(1, /*keepdim=*/true) / m.sum(1, /*keepdim=*/true).clamp_min(1.0);
  if (offset_ == 0 || !sum_.defined()) {
    require_smear(offset_ == 0,
                  "a cached decoder step at position " + std::to_string(offset_) + " without the steps before it");
    sum_ = at::zeros({batch, n_}, p.options());
    count_ = at::zeros({batch, 1}, p.options());
    seen_ = 0;
  }
  require_smear(offset_ == seen_ && sum_.size(0) == batch,
                "decoder step at position " + std::to_string(offset_) + " of " + std::to_string(batch) +
                    " rows does not continue the " + std::to_string(seen_) + " positions of " +
                    std::to_string(sum_.size(0)) + " rows seen");
  auto sums = sum_.unsqueeze(1) + at::cumsum(weighted, 1);  // [B, L, N]
  auto counts = count_.unsqueeze(1) + at::cumsum(m, 1);     // [B, L, 1]
  sum_ = sums.select(1, len - 1).clone();
  count_ = counts.select(1, len - 1).clone();
  seen_ = offset_ + len;
  offset_ = seen_;  // a second call without a new context continues the sequence
  return sums / counts.clamp_min(1.0);
}

at::Tensor SmearLinear::apply(const at::Tensor& u, const at::Tensor& base_out) {
  auto weights = merge_weights(u);  // [B, 1 or L, N]
  auto used = (weights != 0).flatten(0, 1).any(0);  // [N]
  at::Tensor a = a_cat_, b = b_cat_;
  if (!used.all().item<bool>()) {
    auto experts = at::nonzero(used).reshape({-1});
    if (experts.numel() == 0) return base_out.clone();
    weights = weights.index_select(2, experts);
    const std::int64_t n = experts.size(0);
    a = A_.index_select(0, experts.to(A_.device())).reshape({n * r_, d_in_});
    b = B_.index_select(0, experts.to(B_.device())).permute({1, 0, 2}).reshape({d_out_, n * r_}) * scale_;
  }
  const auto dtype = u.scalar_type();
  auto hidden = at::matmul(u, a.to(dtype).t());                                  // [B, L, n·r]
  auto scaled = hidden * weights.to(dtype).repeat_interleave(r_, /*dim=*/2);      // per expert block
  return base_out + at::matmul(scaled, b.to(dtype).t());
}

}  // namespace gaggle::route
