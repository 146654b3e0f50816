// Fidelity to the PHATGOOSE reference implementation (docs/fidelity.md): one case per
// formula of the method, on tiny tensors, against values computed here independently
// with plain loops in double (never by calling the library function under test). A case
// fails when the formula drifts: a LayerNorm eps, a missing 1/sqrt(d_in), the Arrow
// temperature, the top-k renormalisation, the merged mean, the LoRA scale or the gate.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "peft/lora.h"
#include "route/arrow.h"
#include "route/average_activation.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"

using namespace gaggle;

namespace {

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;  // row-major: m[i][j]

// Deterministic values in [-1, 1] (a small LCG), independent of torch's generator.
Vec pseudo(std::size_t n, std::uint64_t seed) {
  Vec out(n);
  std::uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (auto& x : out) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<double>((s >> 11) & ((1ULL << 53) - 1)) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
  }
  return out;
}

Mat matrix(std::size_t rows, std::size_t cols, std::uint64_t seed, double scale = 1.0) {
  Vec v = pseudo(rows * cols, seed);
  Mat m(rows, Vec(cols));
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) m[i][j] = v[i * cols + j] * scale;
  return m;
}

at::Tensor to_tensor(const Mat& m) {
  Vec flat;
  for (const auto& row : m) flat.insert(flat.end(), row.begin(), row.end());
  return at::tensor(flat, at::kDouble)
      .reshape({static_cast<std::int64_t>(m.size()), static_cast<std::int64_t>(m[0].size())})
      .to(at::kFloat);
}

// [N][rows][cols] -> float tensor [N, rows, cols].
at::Tensor to_tensor3(const std::vector<Mat>& ms) {
  std::vector<at::Tensor> parts;
  for (const auto& m : ms) parts.push_back(to_tensor(m));
  return at::stack(parts).contiguous();
}

Mat to_mat(const at::Tensor& t) {
  auto c = t.to(at::kDouble).contiguous().reshape({t.size(0), -1});
  Mat m(static_cast<std::size_t>(c.size(0)), Vec(static_cast<std::size_t>(c.size(1))));
  const double* p = c.data_ptr<double>();
  for (std::size_t i = 0; i < m.size(); ++i)
    for (std::size_t j = 0; j < m[i].size(); ++j) m[i][j] = p[i * m[i].size() + j];
  return m;
}

std::vector<std::vector<std::int64_t>> to_index(const at::Tensor& t) {
  auto c = t.to(at::kLong).contiguous();
  std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(c.size(0)));
  const std::int64_t* p = c.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i].assign(p + i * static_cast<std::size_t>(c.size(1)), p + (i + 1) * static_cast<std::size_t>(c.size(1)));
  return out;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// nn.LayerNorm(d, elementwise_affine=False) with its default eps 1e-5: population variance.
Vec layer_norm(const Vec& x, double eps = 1e-5) {
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  Vec out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = (x[i] - mean) / std::sqrt(var + eps);
  return out;
}

// y = M x for M [rows][cols].
Vec matvec(const Mat& m, const Vec& x) {
  Vec y(m.size(), 0.0);
  for (std::size_t i = 0; i < m.size(); ++i) y[i] = dot(m[i], x);
  return y;
}

// B [d_out][r] · A [r][d_in] · u / r.
Vec lora_update(const Mat& A, const Mat& B, const Vec& u, double scale) {
  Vec h = matvec(A, u);
  Vec y = matvec(B, h);
  for (auto& v : y) v *= scale;
  return y;
}

double max_abs_diff(const Mat& a, const Mat& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j) m = std::max(m, std::abs(a[i][j] - b[i][j]));
  }
  return m;
}

// The reference's routing of one token: softmax over all N scores, the k largest
// (descending), renormalised p / (Σ_topk p + 1e-6) (FFNExperts, normalize_topk, epsilon).
struct TokenRouting {
  std::vector<std::int64_t> index;
  Vec weight;
};

TokenRouting reference_topk(const Vec& scores, int k) {
  double mx = scores[0];
  for (double s : scores) mx = std::max(mx, s);
  Vec p(scores.size());
  double z = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) z += (p[i] = std::exp(scores[i] - mx));
  for (auto& v : p) v /= z;
  TokenRouting r;
  std::vector<bool> taken(scores.size(), false);
  double sum = 0;
  for (int s = 0; s < k; ++s) {
    std::int64_t best = -1;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (!taken[i] && (best < 0 || p[i] > p[static_cast<std::size_t>(best)])) best = static_cast<std::int64_t>(i);
    taken[static_cast<std::size_t>(best)] = true;
    r.index.push_back(best);
    r.weight.push_back(p[static_cast<std::size_t>(best)]);
    sum += p[static_cast<std::size_t>(best)];
  }
  for (auto& w : r.weight) w /= sum + 1e-6;
  return r;
}

}  // namespace

TEST_CASE("phatgoose_keys: LayerNorm without affine, eps 1e-5, per gate vector", "[route][fidelity]") {
  // Row 2 has a variance (~1e-6) well below eps: eps 1e-5 versus 1e-6 or 1e-12 changes it
  // by a large factor. Row 3 is the zero gate (an untrained gate): its key is zero.
  Mat gates = matrix(4, 7, 1);
  gates[2] = {0.001, 0.002, 0.0, -0.001, 0.0005, -0.0015, 0.0012};
  gates[3] = Vec(7, 0.0);
  Mat expected;
  for (const auto& g : gates) expected.push_back(layer_norm(g));

  auto keys = route::phatgoose_keys(to_tensor(gates));
  REQUIRE(keys.scalar_type() == at::kFloat);
  const Mat got = to_mat(keys);
  CHECK(max_abs_diff(got, expected) < 1e-6);
  // With eps 1e-5 the tiny row stays far below unit scale (a plain standardisation would not).
  double row2 = 0;
  for (double v : got[2]) row2 = std::max(row2, std::abs(v));
  CHECK(row2 < 0.7);

  // Average activation keys are normalised the same way (routed exactly like PHATGOOSE).
  CHECK(max_abs_diff(to_mat(route::average_activation_keys(to_tensor(gates))), expected) < 1e-6);
}

TEST_CASE("layer_norm_scores: LN(u) . key / sqrt(d_in)", "[route][fidelity]") {
  const std::size_t d_in = 6, n = 3;
  Mat u = matrix(4, d_in, 2, 3.0);
  u[3] = {0.0001, -0.0002, 0.0003, 0.0, 0.0001, -0.0001};  // variance below eps
  Mat keys = matrix(n, d_in, 3);                             // prepared keys, used as given
  Mat expected(u.size(), Vec(n));
  for (std::size_t t = 0; t < u.size(); ++t) {
    Vec lu = layer_norm(u[t]);
    for (std::size_t i = 0; i < n; ++i) expected[t][i] = dot(lu, keys[i]) / std::sqrt(static_cast<double>(d_in));
  }
  auto scores = route::layer_norm_scores(to_tensor(u), to_tensor(keys));
  CHECK(max_abs_diff(to_mat(scores), expected) < 1e-5);
}

TEST_CASE("top-k routing: softmax over all N, top k, renormalised over the k", "[route][fidelity]") {
  const bool generic = GENERATE(false, true);
  const int k = GENERATE(1, 2, 3);
  const std::size_t n = 5, r = 2, d_in = 6, d_out = 4, tokens = 7;
  Mat gates = matrix(n, d_in, 10, 2.0);
  Mat u = matrix(tokens, d_in, 11, 2.0);
  Mat W = matrix(d_out, d_in, 12);
  std::vector<Mat> A, B;
  for (std::size_t i = 0; i < n; ++i) {
    A.push_back(matrix(r, d_in, 20 + i));
    B.push_back(matrix(d_out, r, 40 + i));
  }
  const double scale = 1.0 / static_cast<double>(r);  // divide_by_d_bottleneck, alpha = 1

  // Expected, from the raw gates: s_i = LN(u) . LN(g_i) / sqrt(d_in), the reference's top-k,
  // then y = W u + Σ_topk w_i B_i A_i u / r.
  Mat exp_scores(tokens, Vec(n)), exp_weight(tokens), exp_out(tokens);
  std::vector<std::vector<std::int64_t>> exp_index(tokens);
  for (std::size_t t = 0; t < tokens; ++t) {
    Vec lu = layer_norm(u[t]);
    for (std::size_t i = 0; i < n; ++i) exp_scores[t][i] = dot(lu, layer_norm(gates[i])) / std::sqrt(double(d_in));
    auto rt = reference_topk(exp_scores[t], k);
    exp_index[t] = rt.index;
    exp_weight[t] = rt.weight;
    exp_out[t] = matvec(W, u[t]);
    for (int s = 0; s < k; ++s) {
      const auto e = static_cast<std::size_t>(rt.index[static_cast<std::size_t>(s)]);
      Vec y = lora_update(A[e], B[e], u[t], scale);
      for (std::size_t j = 0; j < d_out; ++j) exp_out[t][j] += rt.weight[static_cast<std::size_t>(s)] * y[j];
    }
  }

  route::RoutedLinearOptions options;
  options.top_k = k;
  options.force_generic = generic;
  route::RoutedLinear layer(to_tensor3(A), to_tensor3(B), route::phatgoose_keys(to_tensor(gates)), options);
  CHECK(layer.lora_scale() == Approx(0.5));
  at::Tensor ut = to_tensor(u);
  route::Routing routing;
  if (generic) {
    routing = layer.route(ut);  // grad mode on: the LibTorch topk branch
  } else {
    at::NoGradGuard no_grad;
    routing = layer.route(ut);  // the CPU row-scan branch
  }
  CHECK(max_abs_diff(to_mat(routing.scores), exp_scores) < 1e-5);
  CHECK(to_index(routing.topk_index) == exp_index);
  Mat weight = to_mat(routing.topk_weight);
  CHECK(max_abs_diff(weight, exp_weight) < 1e-6);

  // The renormalised top-k of the softmax over all N equals the softmax over the k scores,
  // up to the +1e-6 in the denominator (at most 1e-6 · N / k relative).
  for (std::size_t t = 0; t < tokens; ++t) {
    double z = 0;
    for (auto e : exp_index[t]) z += std::exp(exp_scores[t][static_cast<std::size_t>(e)]);
    for (std::size_t s = 0; s < exp_index[t].size(); ++s) {
      double softmax_k = std::exp(exp_scores[t][static_cast<std::size_t>(exp_index[t][s])]) / z;
      CHECK(std::abs(weight[t][s] - softmax_k) < 1e-6 * double(n) / k + 1e-6);
    }
  }

  at::NoGradGuard no_grad;
  auto base = at::mm(ut, to_tensor(W).t());
  CHECK(max_abs_diff(to_mat(layer.apply(ut, base)), exp_out) < 1e-5);
}

TEST_CASE("arrow_keys: top right singular vector of B A, unit norm, largest component positive",
          "[route][fidelity]") {
  const std::size_t n = 3, r = 3, d_in = 7, d_out = 5;
  std::vector<Mat> A, B;
  for (std::size_t i = 0; i < n; ++i) {
    A.push_back(matrix(r, d_in, 60 + i));
    Mat b = matrix(d_out, r, 70 + i);
    for (auto& row : b) row[0] *= 4.0;  // a clear gap between the top two singular values
    B.push_back(b);
  }
  // Scaling B (alpha / r folded in at assembly) must not change the direction.
  const double fold = 1.0 / static_cast<double>(r);
  std::vector<Mat> B_scaled = B;
  for (auto& b : B_scaled)
    for (auto& row : b)
      for (auto& v : row) v *= fold;

  auto keys = route::arrow_keys(to_tensor3(A), to_tensor3(B));
  auto keys_scaled = route::arrow_keys(to_tensor3(A), to_tensor3(B_scaled));
  Mat got = to_mat(keys), got_scaled = to_mat(keys_scaled);
  REQUIRE(got.size() == n);
  for (std::size_t i = 0; i < n; ++i) {
    // M = B A [d_out][d_in]; power iteration on Mᵀ M from a fixed start.
    Mat M(d_out, Vec(d_in, 0.0));
    for (std::size_t o = 0; o < d_out; ++o)
      for (std::size_t j = 0; j < d_in; ++j)
        for (std::size_t q = 0; q < r; ++q) M[o][j] += B[i][o][q] * A[i][q][j];
    Vec v = pseudo(d_in, 90 + i);
    for (int it = 0; it < 2000; ++it) {
      Vec mv = matvec(M, v);
      Vec next(d_in, 0.0);
      for (std::size_t o = 0; o < d_out; ++o)
        for (std::size_t j = 0; j < d_in; ++j) next[j] += M[o][j] * mv[o];
      double norm = std::sqrt(dot(next, next));
      for (auto& x : next) x /= norm;
      v = next;
    }
    const Vec& key = got[i];
    CHECK(std::abs(std::sqrt(dot(key, key)) - 1.0) < 1e-6);
    CHECK(std::abs(std::abs(dot(key, v)) - 1.0) < 1e-6);
    std::size_t largest = 0;
    for (std::size_t j = 1; j < d_in; ++j)
      if (std::abs(key[j]) > std::abs(key[largest])) largest = j;
    CHECK(key[largest] > 0);
    CHECK(max_abs_diff(Mat{got_scaled[i]}, Mat{key}) < 1e-6);
  }
}

TEST_CASE("arrow score: |u . key| / 10 / sqrt(d_in), no LayerNorm", "[route][fidelity]") {
  const std::size_t n = 4, r = 2, d_in = 9, d_out = 3, tokens = 5;
  Mat keys = matrix(n, d_in, 100);
  Mat u = matrix(tokens, d_in, 101, 5.0);
  std::vector<Mat> A, B;
  for (std::size_t i = 0; i < n; ++i) {
    A.push_back(matrix(r, d_in, 110 + i));
    B.push_back(matrix(d_out, r, 120 + i));
  }
  route::RoutedLinearOptions options;
  options.score = route::ScoreKind::abs_dot;
  options.top_k = 2;
  route::RoutedLinear layer(to_tensor3(A), to_tensor3(B), to_tensor(keys), options);
  at::NoGradGuard no_grad;
  auto routing = layer.route(to_tensor(u));
  Mat expected(tokens, Vec(n));
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < n; ++i)
      expected[t][i] = std::abs(dot(u[t], keys[i])) / 10.0 / std::sqrt(static_cast<double>(d_in));
  CHECK(max_abs_diff(to_mat(routing.scores), expected) < 1e-5);
  // ... and the same top-k renormalisation as PHATGOOSE.
  Mat weight = to_mat(routing.topk_weight);
  auto index = to_index(routing.topk_index);
  for (std::size_t t = 0; t < tokens; ++t) {
    auto rt = reference_topk(expected[t], 2);
    CHECK(index[t] == rt.index);
    for (std::size_t s = 0; s < 2; ++s) CHECK(std::abs(weight[t][s] - rt.weight[s]) < 1e-6);
  }
}

TEST_CASE("merged experts: the mean of the products B_i A_i / r, not the product of means", "[route][fidelity]") {
  // (n, r, d_in, d_out): the first is stored dense (N r (d_in + d_out) > d_in d_out), the
  // second as one low-rank pair; both must give the same formula.
  struct Shape {
    std::size_t n, r, d_in, d_out;
  };
  const int which = GENERATE(0, 1);
  const Shape shape = which == 0 ? Shape{3, 2, 4, 3} : Shape{2, 1, 8, 8};
  std::vector<Mat> A, B;
  for (std::size_t i = 0; i < shape.n; ++i) {
    A.push_back(matrix(shape.r, shape.d_in, 130 + i));
    B.push_back(matrix(shape.d_out, shape.r, 140 + i));
  }
  const double scale = 1.0 / static_cast<double>(shape.r);
  Mat u = matrix(4, shape.d_in, 150, 2.0);
  Mat expected(u.size(), Vec(shape.d_out, 0.0)), product_of_means(u.size(), Vec(shape.d_out, 0.0));
  Mat A_mean(shape.r, Vec(shape.d_in, 0.0)), B_mean(shape.d_out, Vec(shape.r, 0.0));
  for (std::size_t i = 0; i < shape.n; ++i) {
    for (std::size_t q = 0; q < shape.r; ++q)
      for (std::size_t j = 0; j < shape.d_in; ++j) A_mean[q][j] += A[i][q][j] / double(shape.n);
    for (std::size_t o = 0; o < shape.d_out; ++o)
      for (std::size_t q = 0; q < shape.r; ++q) B_mean[o][q] += B[i][o][q] / double(shape.n);
  }
  for (std::size_t t = 0; t < u.size(); ++t) {
    for (std::size_t i = 0; i < shape.n; ++i) {
      Vec y = lora_update(A[i], B[i], u[t], scale);
      for (std::size_t o = 0; o < shape.d_out; ++o) expected[t][o] += y[o] / double(shape.n);
    }
    product_of_means[t] = lora_update(A_mean, B_mean, u[t], scale);
  }
  REQUIRE(max_abs_diff(expected, product_of_means) > 1e-3);  // the case tells the two apart

  route::MergedLinear merged(to_tensor3(A), to_tensor3(B));
  CHECK(merged.dense() == (shape.n * shape.r * (shape.d_in + shape.d_out) > shape.d_in * shape.d_out));
  at::NoGradGuard no_grad;
  CHECK(max_abs_diff(to_mat(merged.update(to_tensor(u))), expected) < 1e-5);
  // apply() adds the base output.
  Mat base = matrix(u.size(), shape.d_out, 160);
  Mat with_base = expected;
  for (std::size_t t = 0; t < u.size(); ++t)
    for (std::size_t o = 0; o < shape.d_out; ++o) with_base[t][o] += base[t][o];
  CHECK(max_abs_diff(to_mat(merged.apply(to_tensor(u), to_tensor(base))), with_base) < 1e-5);

  // The other form (router "merged-factors", the reference's released average_lora_weights):
  // one expert whose factors are the means, B_mean A_mean u / r.
  route::MergedLinear factors(to_tensor3(A), to_tensor3(B), 0, route::MergeForm::factors);
  CHECK_FALSE(factors.dense());
  CHECK(max_abs_diff(to_mat(factors.update(to_tensor(u))), product_of_means) < 1e-5);
}

TEST_CASE("LoRA forward: W u + B A u / r; gate mode W u + sigmoid(v . u) B A u / r", "[route][fidelity]") {
  const std::int64_t d_in = 5, d_out = 4, r = 2;
  peft::LoraOptions options;
  options.rank = r;  // alpha stays 1: the update is B A u / r (divide_by_d_bottleneck)
  peft::LoraAdapter adapter(d_in, d_out, options);
  CHECK(adapter->scale() == Approx(0.5));
  Mat A = matrix(r, d_in, 170), B = matrix(d_out, r, 171);
  Vec v = pseudo(d_in, 172);
  Mat W = matrix(d_out, d_in, 173);
  const std::size_t batch = 2, len = 3;
  Mat u = matrix(batch * len, d_in, 174, 2.0);
  {
    at::NoGradGuard no_grad;
    adapter->lora_a.copy_(to_tensor(A));
    adapter->lora_b.copy_(to_tensor(B));
  }
  auto ut = to_tensor(u).reshape({static_cast<std::int64_t>(batch), static_cast<std::int64_t>(len), d_in});
  auto base = at::matmul(ut, to_tensor(W).t());

  SECTION("expert mode") {
    Mat expected(u.size());
    for (std::size_t t = 0; t < u.size(); ++t) {
      expected[t] = matvec(W, u[t]);
      Vec y = lora_update(A, B, u[t], 0.5);
      for (std::size_t o = 0; o < expected[t].size(); ++o) expected[t][o] += y[o];
    }
    at::NoGradGuard no_grad;
    CHECK(max_abs_diff(to_mat(adapter->apply(ut, base).reshape({-1, d_out})), expected) < 1e-5);
  }

  SECTION("gate mode: the scalar gate on the LoRA output equals the reference's gate on its input") {
    adapter->set_mode(peft::LoraMode::gate);
    REQUIRE(adapter->gate.defined());
    {
      at::NoGradGuard no_grad;
      CHECK(adapter->gate.abs().max().item<double>() == 0.0);  // zero init: sigmoid(0) = 1/2 at the start
      adapter->gate.copy_(at::tensor(v, at::kDouble).to(at::kFloat));
    }
    Mat expected(u.size());
    for (std::size_t t = 0; t < u.size(); ++t) {
      const double g = 1.0 / (1.0 + std::exp(-dot(v, u[t])));  // sigmoid of the raw u (no LN)
      // The reference (FFNExperts.learn_input_gate="only_sigmoid") scales the LoRA path's
      // input: B A (g u) / r. LoRA is linear, so this is g · B A u / r.
      Vec gated_input = u[t];
      for (auto& x : gated_input) x *= g;
      expected[t] = matvec(W, u[t]);
      Vec y = lora_update(A, B, gated_input, 0.5);
      for (std::size_t o = 0; o < expected[t].size(); ++o) expected[t][o] += y[o];
    }
    at::NoGradGuard no_grad;
    CHECK(max_abs_diff(to_mat(adapter->apply(ut, base).reshape({-1, d_out})), expected) < 1e-5);
  }

  SECTION("init: A ~ N(0, 0.01^2), B = 0, and only the gate trains in gate mode") {
    peft::LoraOptions wide;
    wide.rank = 16;
    peft::LoraAdapter fresh(4096, 8, wide);
    at::NoGradGuard no_grad;
    CHECK(fresh->lora_b.abs().max().item<double>() == 0.0);
    const double std_a = fresh->lora_a.to(at::kDouble).std().item<double>();
    CHECK(std::abs(std_a - 0.01) < 0.0005);
    CHECK(fresh->lora_a.requires_grad());
    CHECK(fresh->lora_b.requires_grad());
    fresh->set_mode(peft::LoraMode::gate);
    CHECK_FALSE(fresh->lora_a.requires_grad());
    CHECK_FALSE(fresh->lora_b.requires_grad());
    CHECK(fresh->gate.requires_grad());
    CHECK(fresh->gate.size(0) == 4096);
  }
}
