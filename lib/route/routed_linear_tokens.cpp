// RoutedLinear::apply and forward, with a routing trace that counts real tokens only (the
// padding mask the model tells its adapters, model::TokenContext), kept apart from the
// grouped kernel in routed_linear.cpp.
#include <ATen/ATen.h>

#include <utility>

#include "route/routed_linear.h"

namespace gaggle::route {

void RoutedLinear::set_tokens(const model::TokenContext& context) { token_mask_ = context.mask; }

at::Tensor RoutedLinear::apply(const at::Tensor& u, const at::Tensor& base_out) {
  return route_and_combine(u, base_out, /*in_place=*/false);
}

at::Tensor RoutedLinear::forward(const at::Tensor& u, const at::Tensor& weight) {
  if (u.dim() >= 1 && u.size(-1) == d_in_) {
    // One pass over the tokens where the CPU kernel runs (routed_linear_forward.cpp).
    auto one_pass = one_pass_forward(u.reshape({-1, d_in_}), weight);
    if (one_pass.defined()) {
      auto sizes = u.sizes().vec();
      sizes.back() = d_out_;
      return one_pass.view(sizes);
    }
  }
  return route_and_combine(u, at::linear(u, weight), /*in_place=*/true);
}

at::Tensor RoutedLinear::route_and_combine(const at::Tensor& u, const at::Tensor& base_out, bool in_place) {
  Routing routing = route(u, /*keep_scores=*/false);
  if (!trace_) return combine_into(u, base_out, routing, in_place);
  at::Tensor index = routing.topk_index;  // [T, k]
  if (token_mask_.defined() && token_mask_.numel() == index.size(0))
    index = index.index_select(0, at::nonzero(token_mask_.reshape({-1}).to(index.device()) != 0).reshape({-1}));
  auto counts = at::bincount(index.reshape({-1}), {}, n_).to(at::kCPU).contiguous();
  const std::int64_t* c = counts.data_ptr<std::int64_t>();
  for (std::int64_t e = 0; e < n_; ++e) (*trace_)[e] += c[e];
  // The kernel's own counting (every row) is off while it runs.
  struct Restore {
    std::vector<std::int64_t>*& slot;
    std::vector<std::int64_t>* value;
    ~Restore() { slot = value; }
  } restore{trace_, std::exchange(trace_, nullptr)};
  return combine_into(u, base_out, routing, in_place);
}

}  // namespace gaggle::route
