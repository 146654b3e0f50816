// The inverted-file router (route/ivf_index.h): probing every cluster is exact routing,
// recall is measured against exact top-k honestly, and bad indexes are refused.
#include "route/ivf_index.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "io/atomic_file.h"
#include "io/error.h"
#include "model/t5.h"
#include "route/assembly.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"
#include "route/routed_model.h"
#include "route/world.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

struct Layer {
  at::Tensor A, B, keys;
};

Layer experts(std::int64_t n, std::int64_t d, std::int64_t r, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Layer l;
  l.A = at::randn({n, r, d}, gen) * 0.3;
  l.B = at::randn({n, d, r}, gen) * 0.3;
  l.keys = route::phatgoose_keys(at::randn({n, d}, gen));
  return l;
}

at::Tensor queries(const at::Tensor& u) {
  return route::layer_norm_no_affine(u) * (1.0 / std::sqrt(static_cast<double>(u.size(1))));
}

}  // namespace

TEST_CASE("an ivf index probed on every cluster routes exactly as exact top-k", "[route][ivf]") {
  c10::InferenceMode guard;
  auto l = experts(40, 16, 3, 1);
  auto index = route::build_ivf_index(l.keys, 6);
  route::check_ivf_index(index, 40, 16, "test");
  CHECK(index.clusters() == 6);
  auto u = at::randn({64, 16}, at::make_generator<at::CPUGeneratorImpl>(2));
  route::RoutedLinearOptions o;
  o.top_k = 2;
  route::RoutedLinear exact(l.A, l.B, l.keys, o);
  auto want = exact.route(u);
  auto got = route::ivf_route(queries(u), index, 6, 2, o.renorm_eps);
  CHECK(at::equal(got.topk_index, want.topk_index));
  CHECK(at::allclose(got.topk_weight, want.topk_weight, 1e-5, 1e-6));
  CHECK(got.candidates == 64 * 40);
  CHECK(route::topk_recall(want.topk_index, got.topk_index) == 1.0);

  // Through the layer: the same output.
  auto base = at::randn({64, 16}, at::make_generator<at::CPUGeneratorImpl>(3));
  route::RoutedLinear indexed(l.A, l.B, l.keys, o);
  indexed.set_index(std::make_shared<route::IvfIndex>(index), 6);
  CHECK(at::allclose(indexed.apply(u, base), exact.apply(u, base), 1e-5, 1e-5));
}

TEST_CASE("the index's clusters follow well-separated families of keys (k-means++ seeding)", "[route][ivf]") {
  // 8 families of 5 keys each, tight around their centres, in shuffled order. Seeds drawn
  // uniformly would put two in one family and none in another for almost every seed
  // (8 seeds among 40 keys all in distinct families: about 1 draw in 200), and Lloyd's
  // iterations would keep the merged pair.
  c10::InferenceMode guard;
  constexpr std::int64_t kFamilies = 8, kPerFamily = 5, d = 32;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto family = at::randperm(kFamilies * kPerFamily, gen, at::TensorOptions().dtype(at::kLong)) % kFamilies;
  auto centres = at::randn({kFamilies, d}, gen);
  auto keys = centres.index_select(0, family) + 0.05 * at::randn({kFamilies * kPerFamily, d}, gen);
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    INFO("seed " << seed);
    auto index = route::build_ivf_index(keys, kFamilies, 20, seed);
    for (std::int64_t c = 0; c < kFamilies; ++c) {
      const std::int64_t lo = index.offsets[c].item<std::int64_t>(), hi = index.offsets[c + 1].item<std::int64_t>();
      REQUIRE(hi - lo == kPerFamily);  // one family per cluster, whole
      auto members = index.members.narrow(0, lo, hi - lo);
      CHECK(at::all(family.index_select(0, members) == family[members[0]]).item<bool>());
    }
  }
}

TEST_CASE("k-means stops where its assignment repeats, with the index more iterations would give",
          "[route][ivf]") {
  // Once an assignment repeats, every later iteration repeats it: stopping there must not
  // change the index. 200 iterations against the default 20, on keys in families and on
  // independent ones.
  c10::InferenceMode guard;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto family = at::randint(6, {400}, gen, at::TensorOptions().dtype(at::kLong));
  auto grouped = at::randn({6, 8}, gen).index_select(0, family) + 0.5 * at::randn({400, 8}, gen);
  for (const auto& keys : {grouped, at::randn({400, 8}, gen)}) {
    auto few = route::build_ivf_index(keys, 12, 20, 3), many = route::build_ivf_index(keys, 12, 200, 3);
    // Not converged after one iteration (else this would test nothing).
    CHECK_FALSE(at::equal(route::build_ivf_index(keys, 12, 1, 3).members, many.members));
    CHECK(at::equal(few.members, many.members));
    CHECK(at::equal(few.offsets, many.offsets));
    CHECK(at::equal(few.centroids, many.centroids));
  }
}

TEST_CASE("an ivf index routes a NaN token to valid experts with NaN weights and leaves the others alone",
          "[route][ivf]") {
  c10::InferenceMode guard;
  auto l = experts(40, 16, 3, 1);
  auto index = route::build_ivf_index(l.keys, 6);
  auto u = at::randn({8, 16}, at::make_generator<at::CPUGeneratorImpl>(2));
  auto clean = route::ivf_route(queries(u), index, 2, 2, 1e-6);
  u[3][5] = std::nan("");
  auto got = route::ivf_route(queries(u), index, 2, 2, 1e-6);
  CHECK(got.topk_index.min().item<std::int64_t>() >= 0);
  CHECK(got.topk_index.max().item<std::int64_t>() < 40);
  CHECK(got.topk_weight[3].isnan().all().item<bool>());
  for (const std::int64_t t : {0, 1, 2, 4, 5, 6, 7}) {
    CHECK(at::equal(got.topk_index[t], clean.topk_index[t]));
    CHECK(at::equal(got.topk_weight[t], clean.topk_weight[t]));
  }
}

TEST_CASE("ivf routing from raw token rows equals routing their normalised queries", "[route][ivf]") {
  c10::InferenceMode guard;
  auto l = experts(120, 32, 2, 7);
  auto index = route::build_ivf_index(l.keys, 10);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  // Rows far from zero mean and unit scale: LN must be applied, not assumed.
  auto u = at::randn({200, 32}, gen) * 3.0 + 40.0;
  for (std::int64_t probe : {1, 3, 10}) {
    INFO("probe " << probe);
    auto want = route::ivf_route(queries(u), index, probe, 2, 1e-6);
    auto got = route::ivf_route_tokens(u, index, probe, 2, 1e-6, route::kRouteLayerNormEps);
    CHECK(at::equal(got.topk_index, want.topk_index));
    CHECK(at::allclose(got.topk_weight, want.topk_weight, 1e-5, 1e-6));
    CHECK(got.candidates == want.candidates);
  }
  // A NaN token gets valid experts and NaN weights; its neighbours are untouched.
  auto clean = route::ivf_route_tokens(u, index, 3, 2, 1e-6, route::kRouteLayerNormEps);
  u[7][4] = std::nan("");
  auto got = route::ivf_route_tokens(u, index, 3, 2, 1e-6, route::kRouteLayerNormEps);
  CHECK(got.topk_index.min().item<std::int64_t>() >= 0);
  CHECK(got.topk_index.max().item<std::int64_t>() < 120);
  CHECK(got.topk_weight[7].isnan().all().item<bool>());
  CHECK(at::equal(got.topk_index[8], clean.topk_index[8]));
}

TEST_CASE("ivf recall is the share of tokens whose top-k set is exact, and never falls as more clusters are probed",
          "[route][ivf]") {
  auto exact = at::tensor({0, 1, 2, 3, 4, 5, 6, 7}, at::kLong).view({4, 2});
  CHECK(route::topk_recall(exact, exact) == 1.0);
  auto swapped = at::tensor({1, 0, 2, 3, 4, 5, 6, 7}, at::kLong).view({4, 2});
  CHECK(route::topk_recall(exact, swapped) == 1.0);  // a set: order does not matter
  auto one_wrong = at::tensor({0, 1, 2, 9, 4, 5, 6, 7}, at::kLong).view({4, 2});
  CHECK(route::topk_recall(exact, one_wrong) == 0.75);

  c10::InferenceMode guard;
  auto l = experts(200, 32, 2, 4);
  auto index = route::build_ivf_index(l.keys, 16);
  auto u = at::randn({300, 32}, at::make_generator<at::CPUGeneratorImpl>(5));
  route::RoutedLinearOptions o;
  route::RoutedLinear exact_layer(l.A, l.B, l.keys, o);
  auto want = exact_layer.route(u).topk_index;
  double last = 0;
  std::int64_t last_candidates = 0;
  for (std::int64_t probe : {1, 2, 4, 8, 16}) {
    auto r = route::ivf_route(queries(u), index, probe, 2, o.renorm_eps);
    const double recall = route::topk_recall(want, r.topk_index);
    INFO("probe " << probe << " recall " << recall);
    CHECK(recall >= last);
    CHECK(r.candidates > last_candidates);
    last = recall, last_candidates = r.candidates;
  }
  CHECK(last == 1.0);
}

TEST_CASE("a probe margin probes a token's clusters after its best only within the margin of the best's score",
          "[route][ivf]") {
  c10::InferenceMode guard;
  auto l = experts(200, 32, 2, 4);
  auto index = route::build_ivf_index(l.keys, 16);
  auto u = at::randn({300, 32}, at::make_generator<at::CPUGeneratorImpl>(5));
  auto q = queries(u);
  const std::int64_t probe = 4;
  const int k = 2;
  // The centroid scores the router ranks clusters by, in descending order.
  auto sorted = at::mm(q, index.centroids.t()).sort(1, /*descending=*/true);
  auto score = std::get<0>(sorted).contiguous(), order = std::get<1>(sorted).contiguous();
  auto offsets = index.offsets.contiguous();
  const std::int64_t* off = offsets.data_ptr<std::int64_t>();
  auto no_margin = route::ivf_route(q, index, probe, k, 1e-6);
  std::int64_t last_candidates = 0;
  for (double margin : {0.0, 0.05, 0.2, 1.0}) {
    INFO("margin " << margin);
    auto r = route::ivf_route(q, index, probe, k, 1e-6, margin);
    // Each token probes its best cluster, then, of its next best up to `probe`, those within
    // the margin (and more only while it has fewer than k candidates).
    std::int64_t want_probed = 0, want_candidates = 0;
    for (std::int64_t t = 0; t < q.size(0); ++t) {
      std::int64_t width = 0;
      for (std::int64_t j = 0; j < index.clusters() && (j < probe || width < k); ++j) {
        if (width >= k && score[t][j].item<float>() < score[t][0].item<float>() - margin) break;
        const std::int64_t c = order[t][j].item<std::int64_t>(), size = off[c + 1] - off[c];
        if (size == 0) continue;
        ++want_probed, width += size;
      }
      want_candidates += width;
    }
    CHECK(r.probed == want_probed);
    CHECK(r.candidates == want_candidates);
    CHECK(r.candidates >= last_candidates);  // a wider margin never scores fewer experts
    last_candidates = r.candidates;
  }
  CHECK(last_candidates < no_margin.candidates);  // the margins above skip some clusters
  // A margin no score gap reaches is no margin: the same experts, weights and work.
  auto wide = route::ivf_route(q, index, probe, k, 1e-6, 1e30);
  CHECK(at::equal(wide.topk_index, no_margin.topk_index));
  CHECK(at::equal(wide.topk_weight, no_margin.topk_weight));
  CHECK(wide.probed == q.size(0) * probe);
  // From the layer's raw rows, the same as from the queries.
  auto rows = route::ivf_route_tokens(u, index, probe, k, 1e-6, route::kRouteLayerNormEps, 0.2);
  auto qs = route::ivf_route(q, index, probe, k, 1e-6, 0.2);
  CHECK(at::equal(rows.topk_index, qs.topk_index));
  CHECK(rows.probed == qs.probed);
  CHECK_THROWS_WITH(route::ivf_route(q, index, probe, k, 1e-6, -1.0), Catch::Contains("margin must be >= 0"));
  route::RoutedLinear layer(l.A, l.B, l.keys, route::RoutedLinearOptions{});
  CHECK_THROWS_WITH(layer.set_index(std::make_shared<route::IvfIndex>(index), probe, -0.5),
                    Catch::Contains("margin must be >= 0"));
}

TEST_CASE("ivf refuses Arrow, probes out of range and corrupt indexes", "[route][ivf]") {
  auto l = experts(10, 8, 2, 6);
  auto index = std::make_shared<route::IvfIndex>(route::build_ivf_index(l.keys, 3));
  route::RoutedLinearOptions arrow;
  arrow.score = route::ScoreKind::abs_dot;
  route::RoutedLinear a(l.A, l.B, l.keys, arrow);
  CHECK_THROWS_WITH(a.set_index(index, 1), Catch::Contains("Arrow"));
  route::RoutedLinear p(l.A, l.B, l.keys, route::RoutedLinearOptions{});
  CHECK_THROWS_WITH(p.set_index(index, 4), Catch::Contains("between 1 and the 3 clusters"));
  CHECK_THROWS_WITH(route::build_ivf_index(l.keys, 11), Catch::Contains("between 1 and the 10 experts"));
  auto bad = *index;
  bad.members = bad.members.clone();
  bad.members[0] = bad.members[1];
  CHECK_THROWS_WITH(route::check_ivf_index(bad, 10, 8, "m/modules/q.safetensors"),
                    Catch::Contains("m/modules/q.safetensors") && Catch::Contains("exactly once"));
  auto short_offsets = *index;
  short_offsets.offsets = short_offsets.offsets.narrow(0, 0, 3);
  CHECK_THROWS_AS(route::check_ivf_index(short_offsets, 10, 8, "x"), Error);
}

TEST_CASE("assemble --index ivf stores the index; probing every cluster is the exact model; updates rebuild it",
          "[route][ivf][assembly]") {
  gaggle::test::World w(5);
  auto exact = w.options(route::RouterKind::phatgoose, "exact");
  route::assemble(exact);
  auto all = w.options(route::RouterKind::phatgoose, "all");
  all.ivf = true, all.clusters = 3, all.probe = 3;
  auto a = route::assemble(all);
  CHECK(a.index.kind == "ivf");
  CHECK(a.index.recall == 1.0);  // every cluster probed: the exact top-k
  CHECK(a.index.clusters_per_query == 3.0);
  CHECK(a.index.candidates_per_query == 5.0);  // the 5 experts
  auto read = route::read_assembly(all.out_dir);
  CHECK(read.index.clusters == 3);
  CHECK(read.index.probe == 3);
  auto forward = [&](const fs::path& dir) {
    c10::InferenceMode guard;
    auto m = model::load_t5(w.base);
    auto routed = route::RoutedModel::attach(*m, dir, w.fingerprint);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    auto ids = at::randint(2, 40, {2, 7}, gen, at::kLong);
    return m->forward(ids, at::ones({2, 7}, at::kLong), at::randint(2, 40, {2, 5}, gen, at::kLong));
  };
  CHECK(at::allclose(forward(all.out_dir), forward(exact.out_dir), 1e-5, 1e-5));
  // One cluster probed: a different (approximate) model that still runs.
  auto one = w.options(route::RouterKind::phatgoose, "one");
  one.ivf = true, one.clusters = 3, one.probe = 1;
  auto b = route::assemble(one);
  CHECK(b.index.recall >= 0);
  CHECK(b.index.recall <= 1);
  CHECK(at::isfinite(forward(one.out_dir)).all().item<bool>());

  // An update keeps clusters and probe, and writes what a fresh assembly writes.
  auto first = w.options(route::RouterKind::phatgoose, "updated");
  first.experts.pop_back();
  first.ivf = true, first.clusters = 2, first.probe = 1;
  route::assemble(first);
  route::UpdateOptions u;
  u.model_dir = first.out_dir;
  u.trust_file = w.trust;
  u.experts = w.options(route::RouterKind::phatgoose, "x").experts;
  auto r = route::update_assembly(u);
  CHECK(r.assembly.index.clusters == 2);
  auto fresh = w.options(route::RouterKind::phatgoose, "fresh");
  fresh.ivf = true, fresh.clusters = 2, fresh.probe = 1;
  route::assemble(fresh);
  for (const auto& m : r.assembly.modules)
    CHECK(io::read_file(first.out_dir / m.file) == io::read_file(fresh.out_dir / m.file));
  CHECK(io::read_file(first.out_dir / "assembly.json") == io::read_file(fresh.out_dir / "assembly.json"));

  // A probe margin is stored, read back, kept by an update, and the recall is measured with it.
  auto margined = w.options(route::RouterKind::phatgoose, "margined");
  margined.ivf = true, margined.clusters = 3, margined.probe = 3, margined.probe_margin = 1e6;
  auto m = route::assemble(margined);
  CHECK(m.index.recall == 1.0);  // no gap reaches the margin: every cluster probed
  CHECK(route::read_assembly(margined.out_dir).index.probe_margin == 1e6);
  CHECK(at::allclose(forward(margined.out_dir), forward(exact.out_dir), 1e-5, 1e-5));
  auto tight = w.options(route::RouterKind::phatgoose, "tight");
  tight.ivf = true, tight.clusters = 3, tight.probe = 3, tight.probe_margin = 0;
  auto tm = route::assemble(tight);
  CHECK(tm.index.recall <= 1);
  CHECK(tm.index.clusters_per_query >= 1.0);
  CHECK(tm.index.clusters_per_query < 3.0);  // a margin of 0 probes one cluster where it holds k experts
  CHECK(route::read_assembly(tight.out_dir).index.probe_margin == 0);
  CHECK(at::isfinite(forward(tight.out_dir)).all().item<bool>());
  route::UpdateOptions keep;
  keep.model_dir = tight.out_dir;
  keep.trust_file = w.trust;
  keep.experts = w.options(route::RouterKind::phatgoose, "x").experts;
  keep.experts.pop_back();
  CHECK(route::update_assembly(keep).assembly.index.probe_margin == 0);
  CHECK(route::read_assembly(tight.out_dir).index.probe_margin == 0);
  CHECK_FALSE(std::isfinite(route::read_assembly(all.out_dir).index.probe_margin));  // none stored: none read

  // Arrow takes no index.
  auto arrow = w.options(route::RouterKind::arrow, "arrow");
  arrow.ivf = true;
  CHECK_THROWS_WITH(route::assemble(arrow), Catch::Contains("phatgoose and average-activation"));
}

TEST_CASE("gaggle assemble --index ivf reports the recall it measured", "[route][ivf][cli]") {
  gaggle::test::World w(4);
  auto r = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--index", "ivf",
                             "--clusters", "2", "--probe", "2", "--out", (w.dir / "m").string(), "-q"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("index: ivf, 2 clusters per module, 2 probed per token"));
  CHECK_THAT(r.out, Catch::Contains("recall 100.0%"));
  CHECK_THAT(r.out, Catch::Contains("(2.00 clusters, 4.0 experts scored each)"));
  auto bad = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--probe", "2",
                               "--out", (w.dir / "x").string()});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--index ivf"));
  auto margin = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--index", "ivf",
                                  "--clusters", "2", "--probe", "2", "--probe-margin", "0.5", "--out",
                                  (w.dir / "mm").string(), "-q"});
  INFO(margin.err);
  REQUIRE(margin.exit_code == 0);
  CHECK_THAT(margin.out, Catch::Contains("2 probed per token (those after the best within 0.5 of its score)"));
  CHECK(route::read_assembly(w.dir / "mm").index.probe_margin == 0.5);
  // A stored margin below zero (a model edited or damaged since) is refused, naming the file.
  const auto stored = w.dir / "mm" / "assembly.json";
  std::string text = io::read_file(stored);
  const auto at = text.find("\"probe_margin\": 0.5");
  REQUIRE(at != std::string::npos);
  text.replace(at, std::string("\"probe_margin\": 0.5").size(), "\"probe_margin\": -0.5");
  io::write_file_atomic(stored, text);
  CHECK_THROWS_WITH(route::read_assembly(w.dir / "mm"),
                    Catch::Contains("mm/assembly.json") && Catch::Contains("probe_margin"));
  auto negative = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--index",
                                    "ivf", "--probe-margin", "-1", "--out", (w.dir / "n").string()});
  CHECK(negative.exit_code == 2);
  auto exact_margin = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(),
                                        "--probe-margin", "1", "--out", (w.dir / "e").string()});
  CHECK(exact_margin.exit_code == 2);
  CHECK_THAT(exact_margin.err, Catch::Contains("--index ivf"));
}
