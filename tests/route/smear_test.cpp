// SMEAR-style soft merge (route/smear.h): the layer against a dense reference written
// plainly here, the skipped experts, and assembled SMEAR models (padding invariance,
// cached generation equal to uncached, N = 1 equal to the plain LoRA model).
#include "route/smear.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>

#include "io/error.h"
#include "model/t5.h"
#include "route/assembly.h"
#include "route/phatgoose.h"
#include "route/routed_model.h"
#include "route/world.h"
#include "support/tensor_compare.h"

using namespace gaggle;
using gaggle::test::max_diff;
namespace fs = std::filesystem;
using gaggle::test::World;

namespace {

model::TokenContext context(const at::Tensor& mask, bool causal, std::int64_t offset = 0) {
  model::TokenContext c;
  c.mask = mask;
  c.causal = causal;
  c.offset = offset;
  return c;
}

// The definition, plainly, in float64: per token p = softmax(LN(u) . keys / sqrt(d_in));
// p̄ = mean of p over the example's real tokens (causal: real tokens 0..t); the merged
// expert W = Σ_i p̄_i B_i A_i · scale as a dense matrix; y = base + W u.
at::Tensor reference(const at::Tensor& u, const at::Tensor& base, const at::Tensor& A, const at::Tensor& B,
                     const at::Tensor& keys, const at::Tensor& mask, double scale, bool causal) {
  const std::int64_t batch = u.size(0), len = u.size(1), n = A.size(0), d_in = A.size(2);
  auto out = base.to(at::kDouble).clone();
  auto ud = u.to(at::kDouble);
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<at::Tensor> p;
    for (std::int64_t t = 0; t < len; ++t)
      p.push_back(at::softmax(at::mv(keys.to(at::kDouble), route::layer_norm_no_affine(ud[b][t])) /
                                  std::sqrt(static_cast<double>(d_in)),
                              0));
    for (std::int64_t t = 0; t < len; ++t) {
      auto mean = at::zeros({n}, at::kDouble);
      double count = 0;
      for (std::int64_t s = 0; s < len; ++s) {
        if (mask[b][s].item<std::int64_t>() == 0 || (causal && s > t)) continue;
        mean += p[static_cast<std::size_t>(s)];
        count += 1;
      }
      if (count > 0) mean /= count;
      auto W = at::zeros({B.size(1), d_in}, at::kDouble);
      for (std::int64_t i = 0; i < n; ++i)
        W += mean[i].item<double>() * at::mm(B[i].to(at::kDouble), A[i].to(at::kDouble)) * scale;
      out[b][t] += at::mv(W, ud[b][t]);
    }
  }
  return out.to(at::kFloat);
}

}  // namespace

TEST_CASE("SmearLinear equals the dense reference: encoder rows, causal rows, cached steps",
          "[route][smear]") {
  at::manual_seed(11);
  for (int trial = 0; trial < 3; ++trial) {
    const std::int64_t n = 2 + trial, r = 1 + trial, d_in = 5 + trial, d_out = 4 + 2 * trial, batch = 3, len = 5;
    auto A = at::randn({n, r, d_in}), B = at::randn({n, d_out, r});
    auto keys = route::phatgoose_keys(at::randn({n, d_in}));
    auto u = at::randn({batch, len, d_in}), base = at::randn({batch, len, d_out});
    auto mask = at::ones({batch, len}, at::kLong);
    mask[1].narrow(0, 3, 2).zero_();
    mask[2].narrow(0, 1, 4).zero_();
    const double scale = 0.5;
    INFO("trial " << trial);
    route::SmearLinear layer(A, B, keys, route::SmearOptions{scale});
    layer.set_tokens(context(mask, false));
    CHECK(max_diff(layer.apply(u, base), reference(u, base, A, B, keys, mask, scale, false)) < 1e-5);
    // Causal: the running mean over real tokens 0..t; the same in two cached steps.
    auto want = reference(u, base, A, B, keys, mask, scale, true);
    layer.set_tokens(context(mask, true, 0));
    CHECK(max_diff(layer.apply(u, base), want) < 1e-5);
    layer.set_tokens(context(mask.narrow(1, 0, 2), true, 0));
    auto first = layer.apply(u.narrow(1, 0, 2), base.narrow(1, 0, 2));
    layer.set_tokens(context(mask.narrow(1, 2, 3), true, 2));
    auto rest = layer.apply(u.narrow(1, 2, 3), base.narrow(1, 2, 3));
    CHECK(max_diff(at::cat({first, rest}, 1), want) < 1e-5);
    // A step that does not continue the sequence is refused.
    layer.set_tokens(context(mask.narrow(1, 0, 1), true, 7));
    CHECK_THROWS_AS(layer.apply(u.narrow(1, 0, 1), base.narrow(1, 0, 1)), Error);
  }
  // Without a context, or with a mask of another shape: an error, not a guess.
  route::SmearLinear fresh(at::randn({2, 1, 3}), at::randn({2, 3, 1}), at::randn({2, 3}));
  CHECK_THROWS_WITH(fresh.apply(at::randn({1, 2, 3}), at::zeros({1, 2, 3})), Catch::Contains("TokenContext"));
  fresh.set_tokens(context(at::ones({1, 4}, at::kLong), false));
  CHECK_THROWS_AS(fresh.apply(at::randn({1, 2, 3}), at::zeros({1, 2, 3})), Error);
}

TEST_CASE("SmearLinear skips experts whose mean weight is exactly 0", "[route][smear]") {
  at::manual_seed(12);
  const std::int64_t n = 3, r = 2, d_in = 6, d_out = 5;
  auto A = at::randn({n, r, d_in}), B = at::randn({n, d_out, r});
  // Expert 1's key is huge along the tokens' direction: the others' weights underflow to 0.
  auto direction = at::randn({d_in});
  auto keys = at::randn({n, d_in});
  keys[1] = route::layer_norm_no_affine(direction) * 1e4;
  auto u = direction.view({1, 1, d_in}).expand({2, 3, d_in}) * 2.0 + at::randn({2, 3, d_in}) * 1e-3;
  auto base = at::randn({2, 3, d_out});
  auto mask = at::ones({2, 3}, at::kLong);
  route::SmearLinear layer(A, B, keys, route::SmearOptions{1.0});
  layer.set_tokens(context(mask, false));
  auto weights = layer.merge_weights(u);
  CHECK(weights.select(2, 0).eq(0).all().item<bool>());
  CHECK(weights.select(2, 2).eq(0).all().item<bool>());
  auto want = base + at::matmul(at::matmul(u, A[1].t()), B[1].t());
  CHECK(max_diff(layer.apply(u, base), want) < 1e-4);
}

TEST_CASE("a SMEAR model: padding invariant, cached generation equals uncached, N = 1 is the plain LoRA model",
          "[route][smear]") {
  World w(3);
  auto a = route::assemble(w.options(route::RouterKind::smear, "smear"));
  CHECK(a.format_version == 3);
  CHECK(a.top_k == 0);
  auto read = route::read_assembly(w.dir / "smear");
  CHECK(read.router == route::RouterKind::smear);

  c10::InferenceMode guard;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  auto ids = at::randint(2, 40, {3, 6}, gen, at::kLong);
  const std::vector<std::int64_t> lengths{6, 4, 2};
  auto mask = at::zeros({3, 6}, at::kLong);
  for (std::int64_t b = 0; b < 3; ++b) mask[b].narrow(0, 0, lengths[b]).fill_(1);
  auto dec = at::randint(2, 40, {3, 5}, gen, at::kLong);

  auto m = model::load_t5(w.base);
  route::RoutedModel::attach(*m, w.dir / "smear", w.fingerprint);
  auto logits = m->forward(ids, mask, dec);
  auto plain = model::load_t5(w.base)->forward(ids, mask, dec);
  CHECK(max_diff(logits, plain) > 1e-3);
  // Padding changes nothing: each example alone gives its rows.
  for (std::int64_t b = 0; b < 3; ++b) {
    INFO("example " << b);
    auto one = ids[b].narrow(0, 0, lengths[b]).unsqueeze(0);
    CHECK(max_diff(logits[b], m->forward(one, at::ones_like(one), dec[b].unsqueeze(0))[0]) < 1e-4);
  }
  // Padded decoder positions (labels -100) change nothing either.
  auto enc = m->encode(ids, mask);
  auto labels = dec.clone();
  auto nll = m->token_nll_from_encoded(enc, mask, labels);
  labels[0].narrow(0, 3, 2).fill_(-100);
  auto nll_padded = m->token_nll_from_encoded(enc, mask, labels);
  CHECK(max_diff(nll.narrow(1, 0, 3), nll_padded.narrow(1, 0, 3)) < 1e-5);
  // Teacher forcing equals step-by-step decoding with the cache.
  auto full = m->decode(dec, enc, mask);
  model::KvCache cache;
  std::vector<at::Tensor> steps;
  for (std::int64_t t = 0; t < dec.size(1); ++t) steps.push_back(m->decode(dec.narrow(1, t, 1), enc, mask, &cache));
  CHECK(max_diff(at::cat(steps, 1), full) < 1e-4);
  CHECK(at::equal(m->greedy(ids, mask, 6, false), m->greedy_uncached(ids, mask, 6, false)));
  CHECK(at::equal(m->greedy(ids, mask, 6, true), m->greedy_uncached(ids, mask, 6, true)));

  // N = 1: the soft merge of one expert is that expert on every token.
  World one(1);
  route::assemble(one.options(route::RouterKind::smear, "smear1"));
  auto single = one.options(route::RouterKind::single, "single");
  route::assemble(single);
  auto s = model::load_t5(one.base);
  route::RoutedModel::attach(*s, one.dir / "smear1", one.fingerprint);
  auto l = model::load_t5(one.base);
  route::RoutedModel::attach(*l, one.dir / "single", one.fingerprint);
  CHECK(max_diff(s->forward(ids, mask, dec), l->forward(ids, mask, dec)) < 1e-5);
}

TEST_CASE("assembling smear needs the experts' gates", "[route][smear]") {
  World w(2);
  auto bare = w.experts[0];
  bare.name = "bare";
  for (auto it = bare.tensors.begin(); it != bare.tensors.end();)
    it = it->first.find(".gate") != std::string::npos ? bare.tensors.erase(it) : std::next(it);
  w.write_bundle(w.dir / "bare", bare, w.fingerprint);
  auto o = w.options(route::RouterKind::smear, "out");
  o.experts.push_back(World::source("bare", w.dir / "bare"));
  CHECK_THROWS_WITH(route::assemble(o), Catch::Contains("bundle 'bare/1.0.0' has no gates") && Catch::Contains("smear router"));
}
