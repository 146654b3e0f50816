#include "model/causal_lm.h"

#include <ATen/ATen.h>

#include <vector>

namespace gaggle::model {

at::Tensor target_rows(const at::Tensor& x, const at::Tensor& prompt_lengths, std::int64_t target_len) {
  const std::int64_t batch = x.size(0), len = x.size(1);
  at::Tensor pos = prompt_lengths.to(x.device(), at::kLong).unsqueeze(1) - 1 +
                   at::arange(target_len, at::TensorOptions().dtype(at::kLong).device(x.device())).unsqueeze(0);
  pos = pos.clamp(0, len - 1);  // [B, L]
  std::vector<std::int64_t> shape = {batch, target_len};
  for (std::int64_t d = 2; d < x.dim(); ++d) shape.push_back(x.size(d));
  at::Tensor index = pos;
  for (std::int64_t d = 2; d < x.dim(); ++d) index = index.unsqueeze(-1);
  return x.gather(1, index.expand(shape));
}

at::Tensor target_token_nll(const at::Tensor& target_logits, const at::Tensor& labels) {
  at::Tensor lab = labels.to(target_logits.device(), at::kLong);
  at::Tensor nll = at::cross_entropy_loss(target_logits.reshape({-1, target_logits.size(-1)}).to(at::kFloat),
                                          lab.reshape({-1}), {}, at::Reduction::None, -100);
  return nll.view(lab.sizes());
}

}  // namespace gaggle::model
