// The fused routing decision (route/detail/fused_routing.h, RoutedLinear::route on CPU
// float32) against the plain formulas: LN(u) · key / sqrt(d) computed with a normalised
// copy of u, the softmax over all experts written out, top-k, p / (Σ_topk p + eps).
#include "route/detail/fused_routing.h"

#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "route/routed_linear.h"
#include "support/tensor_compare.h"

using namespace gaggle;
using gaggle::test::max_diff;

namespace {

}  // namespace

TEST_CASE("sum_exp_shifted is the sum of exp(x - shift) within 1e-6, NaN for NaN or infinite input",
          "[route][fused]") {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> value(-120.0f, 4.0f);
  for (const std::int64_t n : {1, 7, 8, 9, 100, 1003}) {
    std::vector<float> x(n);
    for (auto& v : x) v = value(gen);
    const float shift = *std::max_element(x.begin(), x.end());
    double want = 0;
    for (const float v : x) want += std::exp(static_cast<double>(v) - shift);
    const double got = route::detail::sum_exp_shifted(x.data(), n, shift);
    CHECK(std::abs(got - want) <= 1e-6 * want);
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      auto y = x;
      y[n / 2] = bad;
      CHECK(std::isnan(route::detail::sum_exp_shifted(y.data(), n, shift)));
    }
  }
}

TEST_CASE("row_moments gives LayerNorm's mean and 1 / sqrt(var + eps), also far from zero", "[route][fused]") {
  std::mt19937 gen(4);
  std::normal_distribution<float> normal;
  const std::int64_t rows = 5, d = 37;
  std::vector<float> u(rows * d);
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t j = 0; j < d; ++j) u[t * d + j] = 100.0f * static_cast<float>(t) + normal(gen);
  u[4 * d + 3] = u[4 * d + 4];  // nothing special, a duplicate value
  std::vector<float> mean(rows), rstd(rows);
  route::detail::row_moments(u.data(), rows, d, 1e-5, mean.data(), rstd.data());
  for (std::int64_t t = 0; t < rows; ++t) {
    double m = 0, v = 0;
    for (std::int64_t j = 0; j < d; ++j) m += u[t * d + j];
    m /= d;
    for (std::int64_t j = 0; j < d; ++j) v += (u[t * d + j] - m) * (u[t * d + j] - m);
    v /= d;
    CHECK(std::abs(mean[t] - m) <= 1e-5 * std::max(1.0, std::abs(m)));
    CHECK(std::abs(rstd[t] - 1.0 / std::sqrt(v + 1e-5)) <= 1e-5 / std::sqrt(v + 1e-5));
  }
}

TEST_CASE("the fused routing decision equals the LibTorch formulas", "[route][fused]") {
  at::NoGradGuard no_grad;
  const auto kind = GENERATE(route::ScoreKind::layer_norm_dot, route::ScoreKind::abs_dot);
  const int k = GENERATE(1, 2, 3);
  // (experts, width): keys scored per block of tokens, and (2,100 · 64 floats > 512 KiB)
  // in one GEMM first.
  const auto [n, d] = GENERATE(std::pair<std::int64_t, std::int64_t>{3, 24}, std::pair<std::int64_t, std::int64_t>{40, 64},
                               std::pair<std::int64_t, std::int64_t>{2100, 64});
  if (k > n) return;
  const std::int64_t r = 2, t = 300;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11 + n + k);
  auto A = at::randn({n, r, d}, gen, at::kFloat);
  auto B = at::randn({n, d, r}, gen, at::kFloat);
  // Keys that do not sum to zero: LN(u) · key needs the mean(u) · Σ key correction.
  auto keys = at::randn({n, d}, gen, at::kFloat) + 0.7;
  // Tokens with a large common offset: the raw products u · key are far from the scores.
  auto u = at::randn({t, d}, gen, at::kFloat) * 2 + 3;
  route::RoutedLinearOptions options;
  options.top_k = k;
  options.score = kind;
  route::RoutedLinear fused(A, B, keys, options);
  options.force_generic = true;
  route::RoutedLinear plain(A, B, keys, options);
  const auto got = fused.route(u);
  const auto want = plain.route(u);
  CHECK(max_diff(got.scores, want.scores) < 2e-5);
  // The same experts wherever the plain scores do not nearly tie at the k-th place.
  auto sorted = std::get<0>(want.scores.sort(1, /*descending=*/true));
  auto margin = k < n ? (sorted.select(1, k - 1) - sorted.select(1, k)) : at::full({t}, 1.0);
  auto clear = margin > 1e-4;
  CHECK(at::equal(got.topk_index.index({clear}), want.topk_index.index({clear})));
  CHECK(max_diff(got.topk_weight.index({clear}), want.topk_weight.index({clear})) < 1e-5);
  CHECK(clear.sum().item<std::int64_t>() > t * 9 / 10);
  // Without the scores: the same decision, and no [T, N] tensor.
  const auto lean = fused.route(u, /*keep_scores=*/false);
  CHECK_FALSE(lean.scores.defined());
  CHECK(at::equal(lean.topk_index, got.topk_index));
  CHECK(at::equal(lean.topk_weight, got.topk_weight));
}

TEST_CASE("a NaN token routes to valid experts with NaN weights and leaves the others alone", "[route][fused]") {
  at::NoGradGuard no_grad;
  const std::int64_t n = 6, r = 2, d = 16, t = 4;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  auto A = at::randn({n, r, d}, gen, at::kFloat), B = at::randn({n, d, r}, gen, at::kFloat);
  auto keys = at::randn({n, d}, gen, at::kFloat);
  auto u = at::randn({t, d}, gen, at::kFloat);
  route::RoutedLinear layer(A, B, keys, {});
  const auto clean = layer.route(u);
  u[2][5] = std::numeric_limits<float>::quiet_NaN();
  const auto routing = layer.route(u);
  CHECK(routing.topk_index[2].min().item<std::int64_t>() >= 0);
  CHECK(routing.topk_index[2].max().item<std::int64_t>() < n);
  CHECK(at::isnan(routing.topk_weight[2]).all().item<bool>());
  for (const std::int64_t row : {0, 1, 3}) {
    CHECK(at::equal(routing.topk_index[row], clean.topk_index[row]));
    CHECK(at::equal(routing.topk_weight[row], clean.topk_weight[row]));
  }
}
