#include "route/routed_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "io/error.h"
#include "route/arrow.h"
#include "route/average_activation.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/router.h"
#include "support/tensor_compare.h"

using namespace gaggle;
using gaggle::test::max_diff;

namespace {

struct Experts {
  at::Tensor A, B, gates;
};

Experts random_experts(std::int64_t n, std::int64_t r, std::int64_t d_in, std::int64_t d_out, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Experts e;
  e.A = at::randn({n, r, d_in}, gen, at::kFloat) * 0.3;
  e.B = at::randn({n, d_out, r}, gen, at::kFloat) * 0.3;
  e.gates = at::randn({n, d_in}, gen, at::kFloat) + 0.5;
  return e;
}

// The reference, written out independently: every expert computed for every token, then
// masked to the top-k by the reference's own softmax-over-all, topk, renormalise.
at::Tensor dense_reference(const at::Tensor& u, const at::Tensor& base, const Experts& e, const at::Tensor& raw_keys,
                           route::ScoreKind kind, int k, double scale) {
  const auto d_in = u.size(-1);
  auto u2 = u.reshape({-1, d_in}).to(at::kDouble);
  at::Tensor scores;
  if (kind == route::ScoreKind::layer_norm_dot) {
    auto ln = [](const at::Tensor& x) {
      auto m = x.mean(-1, true);
      auto v = (x - m).pow(2).mean(-1, true);
      return (x - m) / at::sqrt(v + 1e-5);
    };
    scores = at::mm(ln(u2), ln(raw_keys.to(at::kDouble)).t()) * std::sqrt(1.0 / d_in);
  } else {
    scores = (at::mm(u2, raw_keys.to(at::kDouble).t()) / 10).abs() * std::sqrt(1.0 / d_in);
  }
  auto probs = at::softmax(scores, 1);
  auto top = probs.topk(k, 1);
  auto weight = std::get<0>(top) / (std::get<0>(top).sum(1, true) + 1e-6);
  auto mask = at::zeros_like(probs).scatter(1, std::get<1>(top), weight);  // [T, N]
  auto out = base.reshape({u2.size(0), -1}).to(at::kDouble).clone();
  for (std::int64_t i = 0; i < e.A.size(0); ++i) {
    auto y = at::mm(at::mm(u2, e.A[i].to(at::kDouble).t()), e.B[i].to(at::kDouble).t()) * scale;
    out += mask.select(1, i).unsqueeze(1) * y;
  }
  return out.reshape(base.sizes());
}

}  // namespace

TEST_CASE("routed layer equals the dense reference on random cases", "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  using Update = route::RoutedLinearOptions::GenericUpdate;
  // The CPU kernel, then the LibTorch-ops path with each of its updates.
  const auto path = GENERATE(as<std::pair<bool, Update>>{}, std::pair{false, Update::automatic},
                             std::pair{true, Update::per_expert}, std::pair{true, Update::bucketed});
  const bool generic = path.first;
  const int k = GENERATE(1, 2, 3);
  const auto kind = GENERATE(route::ScoreKind::layer_norm_dot, route::ScoreKind::abs_dot);
  const std::int64_t n = 9, r = 4, d_in = 24, d_out = 20;
  auto e = random_experts(n, r, d_in, d_out, 17 + k);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  auto u = at::randn({3, 11, d_in}, gen, at::kFloat);  // batch shape [B, S, d]
  auto base = at::randn({3, 11, d_out}, gen, at::kFloat);
  at::Tensor raw_keys = kind == route::ScoreKind::abs_dot ? route::arrow_keys(e.A, e.B) : e.gates;
  at::Tensor keys = kind == route::ScoreKind::abs_dot ? raw_keys : route::phatgoose_keys(e.gates);
  route::RoutedLinearOptions options;
  options.top_k = k;
  options.score = kind;
  options.force_generic = generic;
  options.generic_update = path.second;
  route::RoutedLinear layer(e.A, e.B, keys, options);
  auto y = layer.apply(u, base);
  REQUIRE(y.sizes() == base.sizes());
  CHECK(max_diff(y, dense_reference(u, base, e, raw_keys, kind, k, 1.0 / r)) < 1e-5);
  // The library's dense implementation agrees too.
  auto routing = layer.route(u);
  auto dense = base.reshape({-1, d_out}) + route::dense_routed_update(u, e.A, e.B, routing, 1.0 / r);
  CHECK(max_diff(y.reshape({-1, d_out}), dense) < 1e-5);
  CHECK(routing.topk_index.sizes() == at::IntArrayRef{33, k});
}

TEST_CASE("the bucketed update equals the per-expert one on skewed routings, and traces the same counts",
          "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  using Update = route::RoutedLinearOptions::GenericUpdate;
  // 300 tokens, most of them drawn to expert 3 (one bucket of 512 slots' capacity), the
  // rest spread (buckets of 1 to 64); one expert alone (k = 1); factors in bfloat16.
  struct Case {
    std::int64_t n;
    int k;
    bool bf16;
  };
  for (const Case c : {Case{17, 2, false}, Case{17, 3, true}, Case{1, 1, false}}) {
    INFO("n " << c.n << ", k " << c.k << (c.bf16 ? ", bf16" : ""));
    const std::int64_t r = 4, d_in = 24, d_out = 20, t = 300;
    auto e = random_experts(c.n, r, d_in, d_out, 23);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(24);
    auto u = at::randn({t, d_in}, gen, at::kFloat);
    u.narrow(0, 0, 200).add_(4 * e.gates[c.n > 3 ? 3 : 0]);
    auto base = at::randn({t, d_out}, gen, at::kFloat);
    auto keys = route::phatgoose_keys(e.gates);
    auto A = c.bf16 ? e.A.to(at::kBFloat16) : e.A, B = c.bf16 ? e.B.to(at::kBFloat16) : e.B;
    route::RoutedLinearOptions options;
    options.top_k = c.k;
    options.force_generic = true;
    options.generic_update = Update::per_expert;
    route::RoutedLinear per_expert(A, B, keys, options);
    options.generic_update = Update::bucketed;
    route::RoutedLinear bucketed(A, B, keys, options);
    std::vector<std::int64_t> trace_per_expert(c.n), trace_bucketed(c.n);
    per_expert.set_trace(&trace_per_expert);
    bucketed.set_trace(&trace_bucketed);
    auto routing = per_expert.route(u);
    auto want = per_expert.combine(u, base, routing);
    auto got = bucketed.combine(u, base, routing);
    CHECK(max_diff(got, want) < 1e-5);
    CHECK(trace_bucketed == trace_per_expert);
    CHECK(*std::max_element(trace_bucketed.begin(), trace_bucketed.end()) >= 200);  // the skew is there
    // Zero tokens: the base back, untouched.
    CHECK(at::equal(bucketed.combine(u.narrow(0, 0, 0), base.narrow(0, 0, 0), bucketed.route(u.narrow(0, 0, 0))),
                    base.narrow(0, 0, 0)));
  }
}

TEST_CASE("grouped kernel handles groups larger than one chunk and many threads", "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const std::int64_t n = 3, r = 8, d_in = 32, d_out = 48, t = 700;  // > 128 rows per expert
  auto e = random_experts(n, r, d_in, d_out, 5);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto u = at::randn({t, d_in}, gen, at::kFloat);
  auto base = at::randn({t, d_out}, gen, at::kFloat);
  route::RoutedLinearOptions options;
  route::RoutedLinear fast(e.A, e.B, route::phatgoose_keys(e.gates), options);
  options.force_generic = true;
  route::RoutedLinear generic(e.A, e.B, route::phatgoose_keys(e.gates), options);
  auto y = fast.apply(u, base);
  CHECK(max_diff(y, generic.apply(u, base)) < 1e-5);
  CHECK(max_diff(y, dense_reference(u, base, e, e.gates, route::ScoreKind::layer_norm_dot, 2, 1.0 / r)) < 1e-5);
  // Deterministic: the same input gives bit-identical output.
  CHECK(at::equal(y, fast.apply(u, base)));
}

TEST_CASE("forward adds the update into its own W u: the values of apply(u, W u), and apply leaves base alone",
          "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const int threads = at::get_num_threads();
  at::set_num_threads(2);  // the kernel's split by expert needs more than one worker
  struct Case {
    std::int64_t n, r, d, t;
    bool bf16;
  };
  // r = 4: the gather-and-BLAS path; r = 16: the one-pass update in token blocks; 64
  // experts over 256 tokens: the one-pass update split by expert; then bfloat16 factors.
  for (const Case c : {Case{9, 4, 24, 33, false}, Case{6, 16, 64, 300, false}, Case{64, 16, 64, 256, false},
                       Case{64, 16, 64, 256, true}}) {
    INFO("n " << c.n << ", r " << c.r << ", tokens " << c.t << (c.bf16 ? ", bf16" : ""));
    auto e = random_experts(c.n, c.r, c.d, c.d, 41);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
    auto u = at::randn({c.t, c.d}, gen, at::kFloat);
    auto W = at::randn({c.d, c.d}, gen, at::kFloat);
    auto A = c.bf16 ? e.A.to(at::kBFloat16) : e.A;
    auto B = c.bf16 ? e.B.to(at::kBFloat16) : e.B;
    route::RoutedLinear layer(A, B, route::phatgoose_keys(e.gates), route::RoutedLinearOptions{});
    auto base = at::linear(u, W);
    const auto base_before = base.clone();
    auto applied = layer.apply(u, base);
    CHECK(at::equal(base, base_before));  // apply's base_out is the caller's
    // r = 4 takes the whole-batch path, bit for bit; the others the one-pass forward, whose
    // updates may round differently (B transposed for other row counts).
    if (c.r == 4)
      CHECK(at::equal(layer.forward(u, W), applied));
    else
      CHECK(max_diff(layer.forward(u, W), applied) < 1e-4);
    if (!c.bf16)
      CHECK(max_diff(applied, dense_reference(u, base, e, e.gates, route::ScoreKind::layer_norm_dot, 2, 1.0 / c.r)) <
            1e-4);
  }
  at::set_num_threads(threads);
}

TEST_CASE("the one-pass forward routes and updates per block of tokens as apply(u, W u) does",
          "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const int threads = at::get_num_threads();
  struct Case {
    std::int64_t n, t;
    int k, threads;
    route::ScoreKind kind;
    bool bf16;
    std::int64_t d_in = 64, d_out = 48;
  };
  // 12 experts: the update inside each block; 64 over 600 tokens: too few rows per expert
  // and block, so the update runs afterwards over the whole batch; uneven blocks (1,001
  // tokens), two blocks per worker (40,000 tokens: a block holds 4 MiB of rows, 9,362 at
  // these widths), one worker, Arrow's scores, k = 1 and 3, bfloat16 factors; 100 tokens:
  // too few for blocks, the whole-batch path. 300 experts, d = 256, one worker: a block holds
  // 2,048 tokens, too few for 300 experts (k · 2,048 < 16 · 300), and 4,096 are enough: the
  // blocks grow to 4,096 tokens with the update inside.
  int poisoned_cases = 0;
  for (const Case c : {Case{12, 600, 2, 2, route::ScoreKind::layer_norm_dot, false},
                       Case{64, 600, 2, 2, route::ScoreKind::layer_norm_dot, false},
                       Case{12, 1001, 3, 2, route::ScoreKind::layer_norm_dot, false},
                       Case{12, 40000, 2, 2, route::ScoreKind::layer_norm_dot, false},
                       Case{12, 600, 1, 1, route::ScoreKind::abs_dot, false},
                       Case{12, 600, 2, 2, route::ScoreKind::layer_norm_dot, true},
                       Case{12, 100, 2, 2, route::ScoreKind::layer_norm_dot, false},
                       Case{300, 4096, 2, 1, route::ScoreKind::layer_norm_dot, false, 256, 256}}) {
    INFO("n " << c.n << ", tokens " << c.t << ", k " << c.k << ", threads " << c.threads << (c.bf16 ? ", bf16" : ""));
    at::set_num_threads(c.threads);
    const std::int64_t r = 16, d_in = c.d_in, d_out = c.d_out;
    auto e = random_experts(c.n, r, d_in, d_out, 51);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(52);
    // Tokens that resemble the first three experts' gates: the others are seldom chosen.
    auto pick = at::randint(3, {c.t}, gen, at::kLong);
    auto u = (at::randn({c.t, d_in}, gen, at::kFloat) + 6 * e.gates.index_select(0, pick))
                 .view({-1, c.t / (c.t % 2 ? 1 : 2), d_in});  // [B, S, d]
    auto W = at::randn({d_out, d_in}, gen, at::kFloat);
    auto A = c.bf16 ? e.A.to(at::kBFloat16) : e.A;
    auto B = c.bf16 ? e.B.to(at::kBFloat16) : e.B;
    at::Tensor raw_keys = c.kind == route::ScoreKind::abs_dot ? route::arrow_keys(e.A, e.B) : e.gates;
    at::Tensor keys = c.kind == route::ScoreKind::abs_dot ? raw_keys : route::phatgoose_keys(e.gates);
    route::RoutedLinearOptions options;
    options.top_k = c.k;
    options.score = c.kind;
    route::RoutedLinear layer(A, B, keys, options);
    const auto y = layer.forward(u, W);
    REQUIRE(y.sizes() == at::IntArrayRef{u.size(0), u.size(1), d_out});
    const auto base = at::linear(u, W);
    const double tolerance = 1e-6 * (1 + y.abs().max().item<double>());  // float rounding of outputs ~100
    CHECK(max_diff(y, layer.apply(u, base)) < tolerance);
    if (!c.bf16) CHECK(max_diff(y, dense_reference(u, base, e, raw_keys, c.kind, c.k, 1.0 / r)) < 10 * tolerance);
    CHECK(at::equal(y, layer.forward(u, W)));  // deterministic
    // Without the one pass, forward is apply(u, W u) bit for bit.
    route::RoutedLinearOptions whole = options;
    whole.one_pass_forward = false;
    CHECK(at::equal(route::RoutedLinear(A, B, keys, whole).forward(u, W), layer.apply(u, base)));
    // Experts no token chose are never read: poisoned, they change nothing.
    auto chosen = at::zeros({c.n}, at::kBool).index_fill(0, layer.route(u).topk_index.reshape({-1}), true);
    if (chosen.all().item<bool>()) continue;
    ++poisoned_cases;
    auto unchosen = at::logical_not(chosen).nonzero().reshape({-1});
    auto A2 = A.clone(), B2 = B.clone();
    A2.index_fill_(0, unchosen, std::numeric_limits<float>::quiet_NaN());
    B2.index_fill_(0, unchosen, std::numeric_limits<float>::quiet_NaN());
    route::RoutedLinear poisoned(A2, B2, keys, options);
    CHECK(at::equal(poisoned.forward(u, W), y));
  }
  CHECK(poisoned_cases >= 4);
  at::set_num_threads(threads);
}

TEST_CASE("one expert with top-1 equals the plain LoRA layer", "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const std::int64_t r = 4, d_in = 16, d_out = 12;
  auto e = random_experts(1, r, d_in, d_out, 3);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  auto u = at::randn({2, 5, d_in}, gen, at::kFloat);
  auto W = at::randn({d_out, d_in}, gen, at::kFloat);
  auto base = at::matmul(u, W.t());
  auto lora = base + at::matmul(at::matmul(u, e.A[0].t()), e.B[0].t()) / r;
  for (bool generic : {false, true}) {
    route::RoutedLinearOptions options;
    options.top_k = 1;
    options.force_generic = generic;
    route::RoutedLinear layer(e.A, e.B, route::phatgoose_keys(e.gates), options);
    // The only difference is the reference's renormalisation 1 / (1 + 1e-6).
    CHECK(max_diff(layer.apply(u, base), lora) < 1e-5);
  }
  route::MergedLinear single(e.A, e.B);
  CHECK_FALSE(single.dense());
  CHECK(max_diff(single.apply(u, base), lora) < 1e-5);
}

TEST_CASE("merged experts equal the mean of B_i A_i applied densely", "[route][merged]") {
  at::NoGradGuard no_grad;
  // (n, r): low-rank form for few experts, the dense matrix once N·r is large.
  const auto [n, r] = GENERATE(std::pair<std::int64_t, std::int64_t>{2, 2}, std::pair<std::int64_t, std::int64_t>{12, 4});
  const std::int64_t d_in = 20, d_out = 18;
  auto e = random_experts(n, r, d_in, d_out, 11);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  auto u = at::randn({7, d_in}, gen, at::kFloat);
  auto mean = at::zeros({d_out, d_in}, at::kDouble);
  for (std::int64_t i = 0; i < n; ++i) mean += at::mm(e.B[i].to(at::kDouble), e.A[i].to(at::kDouble));
  mean /= static_cast<double>(n);
  route::MergedLinear merged(e.A, e.B);
  CHECK(merged.dense() == (n * r * (d_in + d_out) > d_in * d_out));
  CHECK(max_diff(merged.update(u), at::mm(u.to(at::kDouble), mean.t()) / r) < 1e-5);
}

TEST_CASE("experts that got no token are never read", "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const std::int64_t n = 40, r = 4, d_in = 16, d_out = 16;
  auto e = random_experts(n, r, d_in, d_out, 21);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(22);
  auto u = at::randn({6, d_in}, gen, at::kFloat);  // 12 slots: most of the 40 experts get none
  auto base = at::zeros({6, d_out});
  for (bool generic : {false, true}) {
    auto A = e.A.clone(), B = e.B.clone();
    route::RoutedLinearOptions options;
    options.force_generic = generic;
    route::RoutedLinear layer(A, B, route::phatgoose_keys(e.gates), options);
    auto before = layer.apply(u, base);
    auto chosen = at::zeros({n}, at::kBool).index_fill(0, layer.route(u).topk_index.reshape({-1}), true);
    REQUIRE(chosen.sum().item<std::int64_t>() < n);
    // Poison every unchosen expert: if the layer touched one, NaN would reach the output.
    auto unchosen = at::logical_not(chosen).nonzero().reshape({-1});
    A.index_fill_(0, unchosen, std::numeric_limits<float>::quiet_NaN());
    B.index_fill_(0, unchosen, std::numeric_limits<float>::quiet_NaN());
    auto after = layer.apply(u, base);
    CHECK(at::isfinite(after).all().item<bool>());
    CHECK(at::equal(before, after));
  }
}

TEST_CASE("the routing trace counts each expert's token slots", "[route][routed_linear]") {
  at::NoGradGuard no_grad;
  const std::int64_t n = 5, r = 2, d = 8;
  auto e = random_experts(n, r, d, d, 31);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(32);
  auto u = at::randn({2, 10, d}, gen, at::kFloat);
  for (bool generic : {false, true}) {
    route::RoutedLinearOptions options;
    options.force_generic = generic;
    route::RoutedLinear layer(e.A, e.B, route::phatgoose_keys(e.gates), options);
    std::vector<std::int64_t> counts(n, 0);
    layer.set_trace(&counts);
    layer.apply(u, at::zeros({2, 10, d}));
    layer.apply(u, at::zeros({2, 10, d}));
    auto expected = at::bincount(layer.route(u).topk_index.reshape({-1}), {}, n) * 2;
    for (std::int64_t i = 0; i < n; ++i) CHECK(counts[i] == expected[i].item<std::int64_t>());
    std::vector<std::int64_t> wrong(n + 1);
    CHECK_THROWS_AS(layer.set_trace(&wrong), Error);
  }
}

TEST_CASE("routed layer supports autograd through the generic path", "[route][routed_linear]") {
  const std::int64_t n = 4, r = 2, d = 8;
  auto e = random_experts(n, r, d, d, 41);
  auto A = e.A.clone().requires_grad_(true);
  route::RoutedLinear layer(A, e.B, route::phatgoose_keys(e.gates), {});
  auto u = at::randn({5, d});
  auto y = layer.apply(u, at::zeros({5, d}));
  y.sum().backward();
  REQUIRE(A.grad().defined());
  CHECK(A.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("routed layer rejects inconsistent shapes and k", "[route][routed_linear]") {
  auto e = random_experts(3, 2, 8, 6, 51);
  auto keys = route::phatgoose_keys(e.gates);
  route::RoutedLinearOptions options;
  options.top_k = 4;
  CHECK_THROWS_AS(route::RoutedLinear(e.A, e.B, keys, options), Error);
  options.top_k = 0;
  CHECK_THROWS_AS(route::RoutedLinear(e.A, e.B, keys, options), Error);
  CHECK_THROWS_AS(route::RoutedLinear(e.A, e.B.transpose(1, 2), keys, {}), Error);
  CHECK_THROWS_AS(route::RoutedLinear(e.A, e.B, keys.narrow(1, 0, 7), {}), Error);
  route::RoutedLinear layer(e.A, e.B, keys, {});
  CHECK_THROWS_AS(layer.apply(at::zeros({2, 7}), at::zeros({2, 6})), Error);
  CHECK_THROWS_AS(layer.apply(at::zeros({2, 8}), at::zeros({3, 6})), Error);
  try {
    route::RoutedLinear(e.A, e.B, keys.narrow(1, 0, 7), {});
  } catch (const Error& err) {
    CHECK_THAT(err.what(), Catch::Contains("keys must be [N, d_in] = [3, 8], got [3, 7]"));
  }
}

TEST_CASE("router keys: PHATGOOSE and average activation normalised once, Arrow the top singular vector",
          "[route][keys]") {
  auto e = random_experts(6, 3, 20, 14, 61);
  auto keys = route::phatgoose_keys(e.gates);
  CHECK(keys.mean(1).abs().max().item<double>() < 1e-5);
  CHECK(max_diff(keys.pow(2).mean(1), at::ones({6})) < 1e-3);  // var / (var + 1e-5)
  CHECK(at::equal(route::average_activation_keys(e.gates), keys));
  auto arrow = route::arrow_keys(e.A, e.B);
  for (std::int64_t i = 0; i < 6; ++i) {
    auto dense = at::mm(e.B[i].to(at::kDouble), e.A[i].to(at::kDouble));
    auto v = std::get<2>(at::linalg_svd(dense, false))[0];
    CHECK(std::abs(at::dot(v, arrow[i].to(at::kDouble)).item<double>()) == Approx(1.0).epsilon(1e-5));
    CHECK(arrow[i].norm().item<double>() == Approx(1.0).epsilon(1e-5));
    CHECK(arrow[i].abs().argmax().item<std::int64_t>() == arrow[i].argmax().item<std::int64_t>());  // sign fixed
  }
  CHECK_THROWS_AS(route::phatgoose_keys(at::zeros({3})), Error);
  CHECK_THROWS_AS(route::arrow_keys(e.A, e.B.narrow(2, 0, 2)), Error);
}

TEST_CASE("routers are one explicit list", "[route][router]") {
  for (auto kind : route::all_routers()) CHECK(route::parse_router(route::router_name(kind)) == kind);
  CHECK(route::parse_router("average-activation") == route::RouterKind::average_activation);
  CHECK_FALSE(route::parse_router("moe").has_value());
  CHECK_THAT(route::router_names(), Catch::Contains("phatgoose, arrow"));
}
