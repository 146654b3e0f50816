// RoutedLinear::route: the routing decision (scores, top-k, renormalised weights).
//
// On CPU float32 without autograd it runs fused (detail/fused_routing.h): per block of
// tokens, the token moments, the raw score GEMM and the selection run while the block is
// in cache, so the tokens are read from memory once and neither LN(u) nor the [T, N]
// probabilities are written. Elsewhere (CUDA, other dtypes, autograd) the same formulas
// run as LibTorch ops.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "io/error.h"
#include "route/detail/cblas.h"
#include "route/detail/fused_routing.h"
#include "route/detail/packed_keys.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"

namespace gaggle::route {
namespace {

// Tokens routed at once. A block's raw scores are selected from while they are still in
// cache. 512 rather than 128: the per-block GEMM then runs at the large GEMM's rate
// (OpenBLAS packs the keys once per call), and the routing decision at 166 and 1000
// experts took 0.2 and 1.3 ms less (2026-12-06, docs/performance.md).
constexpr std::int64_t kBlockRows = 512;

}  // namespace

bool RoutedLinear::fused_route_applies(const at::Tensor& u2) const {
  return !key_sum_.empty() && !options_.force_generic && u2.device().is_cpu() && u2.scalar_type() == at::kFloat &&
         !(at::GradMode::is_enabled() && u2.requires_grad());
}

Routing RoutedLinear::fused_route(const at::Tensor& u2, bool keep_scores) const {
  at::NoGradGuard no_grad;
  const auto u = u2.contiguous();
  const auto keys = keys_.contiguous();
  const std::int64_t t_count = u.size(0), n = n_, d = d_in_;
  const int k = options_.top_k;
  Routing routing;
  routing.topk_index = at::empty({t_count, k}, u.options().dtype(at::kLong));
  routing.topk_weight = at::empty({t_count, k}, u.options());
  if (t_count == 0) {
    if (keep_scores) routing.scores = at::empty({0, n}, u.options());
    return routing;
  }
  // Keys up to kBlockedKeyBytes (2,048 keys at d = 512) are scored per block of tokens,
  // by the packed score kernel or single-threaded BLAS; larger key sets in one
  // multi-threaded GEMM first.
  const detail::SgemmFn sgemm = detail::row_major_sgemm();
  const detail::PackedKeys* packed = packed_keys_.get();
  const bool blocked = (packed || sgemm) && n * d * static_cast<std::int64_t>(sizeof(float)) <= kBlockedKeyBytes;
  at::Tensor raw;  // [T, N]: the raw products, then the scores
  if (keep_scores || !blocked) raw = blocked ? at::empty({t_count, n}, u.options()) : at::mm(u, keys.t());
  const float* u_data = u.data_ptr<float>();
  const float* key_data = blocked && !packed ? keys.data_ptr<float>() : nullptr;  // null: scored already or packed
  float* raw_data = raw.defined() ? raw.data_ptr<float>() : nullptr;
  std::int64_t* index = routing.topk_index.data_ptr<std::int64_t>();
  float* weight = routing.topk_weight.data_ptr<float>();
  at::parallel_for(0, t_count, kBlockRows, [&](std::int64_t begin, std::int64_t end) {
    detail::SingleThreadedBlas one_thread;
    std::vector<float> mean(kBlockRows), rstd(kBlockRows);
    // Kept across calls on this thread: a fresh buffer of megabytes faults in its pages every time.
    thread_local std::vector<float> block_raw;
    if (!raw_data && block_raw.size() < static_cast<std::size_t>(kBlockRows * n)) block_raw.resize(kBlockRows * n);
    for (std::int64_t lo = begin; lo < end; lo += kBlockRows) {
      const std::int64_t rows = std::min(kBlockRows, end - lo);
      route_rows(u_data + lo * d, rows, key_data, raw_data ? raw_data + lo * n : block_raw.data(), mean.data(),
                 rstd.data(), keep_scores, index + lo * k, weight + lo * k);
    }
  });
  if (keep_scores) routing.scores = raw;
  return routing;
}

void RoutedLinear::route_rows(const float* u_rows, std::int64_t rows, const float* key_data, float* raw, float* mean,
                             float* rstd, bool keep_scores, std::int64_t* index, float* weight) const {
  const std::int64_t n = n_, d = d_in_;
  detail::ScoreTransform transform;
  transform.layer_norm = options_.score == ScoreKind::layer_norm_dot;
  transform.scale = 1.0 / std::sqrt(static_cast<double>(d));
  if (!transform.layer_norm) transform.scale /= options_.arrow_temperature;
  transform.key_sum = key_sum_.data();
  if (transform.layer_norm) detail::row_moments(u_rows, rows, d, options_.layer_norm_eps, mean, rstd);
  if (packed_keys_)
    packed_keys_->scores(u_rows, rows, raw, n);
  else if (key_data)
    detail::row_major_sgemm()(false, true, rows, n, d, 1.0f, u_rows, d, key_data, d, 0.0f, raw, n);
  detail::select_top_k(raw, rows, n, mean, rstd, transform, options_.top_k, options_.renorm_eps, keep_scores, index,
                       weight);
}

Routing RoutedLinear::route(const at::Tensor& u, bool keep_scores) const {
  if (u.size(-1) != d_in_)
    throw_error(ErrorCode::invalid, "route",
                "routed linear: input has width " + std::to_string(u.size(-1)) + ", expected d_in " +
                    std::to_string(d_in_));
  auto u2 = u.reshape({-1, d_in_});
  Routing routing;
  if (index_ && u2.device().is_cpu() && !(at::GradMode::is_enabled() && u2.requires_grad())) {
    auto r = ivf_route_tokens(u2, *index_, probe_, options_.top_k, options_.renorm_eps, options_.layer_norm_eps,
                              probe_margin_);
    routing.topk_index = r.topk_index;
    routing.topk_weight = r.topk_weight.to(u2.scalar_type());
    return routing;  // (no [T, N] scores: that is the point)
  }
  if (fused_route_applies(u2)) return fused_route(u2, keep_scores);
  if (options_.score == ScoreKind::layer_norm_dot) {
    routing.scores = layer_norm_scores(u2, keys_, options_.layer_norm_eps);
  } else {
    routing.scores = at::mm(u2, keys_.to(u2.scalar_type()).t()).abs() *
                     (1.0 / (options_.arrow_temperature * std::sqrt(static_cast<double>(d_in_))));
  }
  auto probs = at::softmax(routing.scores, 1);
  auto top = probs.topk(options_.top_k, 1, /*largest=*/true, /*sorted=*/true);
  auto p = std::get<0>(top);
  routing.topk_index = std::get<1>(top);
  routing.topk_weight = p / (p.sum(1, /*keepdim=*/true) + options_.renorm_eps);
  return routing;
}

}  // namespace gaggle::route
