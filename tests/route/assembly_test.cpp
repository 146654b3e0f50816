// Assembly and the routed T5: signed bundles for a tiny base, assembled with each router,
// loaded memory-mapped onto the base, compared with adapters built from the raw tensors.
#include "route/assembly.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/atomic_file.h"
#include "model/fingerprint.h"
#include "model/t5.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"
#include "route/routed_model.h"
#include "route/tensor_file.h"
#include "support/test_support.h"
#include "route/world.h"
#include "support/tensor_compare.h"

using namespace gaggle;
using gaggle::test::max_diff;
namespace fs = std::filesystem;
using gaggle::test::Expert;
using gaggle::test::tiny_config;
using gaggle::test::World;

namespace {

struct Batch {
  at::Tensor ids, mask, dec;
};

Batch batch() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  Batch b;
  b.ids = at::randint(2, 40, {2, 6}, gen, at::kLong);
  b.mask = at::ones({2, 6}, at::kLong);
  b.mask[1].narrow(0, 4, 2).zero_();
  b.dec = at::randint(2, 40, {2, 5}, gen, at::kLong);
  return b;
}

}  // namespace

TEST_CASE("a routed T5 whose experts all have B = 0 equals the base model", "[route][routed_model]") {
  c10::InferenceMode guard;
  auto c = tiny_config();
  at::manual_seed(1);
  auto model = model::make_t5(c);
  model->eval();
  auto b = batch();
  auto base = model->forward(b.ids, b.mask, b.dec);
  for (const auto& m : model->linear_names()) {
    auto shape = model::t5_linear_shape(c, m);
    auto A = at::randn({5, 4, shape[1]});
    auto B = at::zeros({5, shape[0], 4});
    model->set_adapter(m, std::make_shared<route::RoutedLinear>(A, B, route::phatgoose_keys(at::randn({5, shape[1]})),
                                                                route::RoutedLinearOptions{}));
  }
  CHECK(at::equal(model->forward(b.ids, b.mask, b.dec), base));
}

TEST_CASE("assemble phatgoose: verified, stacked, memory-mapped, equal to adapters from the raw tensors",
          "[route][assembly]") {
  World w(4);
  auto a = route::assemble(w.options(route::RouterKind::phatgoose, "routed"));
  CHECK(a.experts.size() == 4);
  CHECK(a.modules.size() == model::t5_linear_names(w.config).size());
  CHECK(a.experts[0].principal == "alice@example.com");
  CHECK(a.experts[0].lora_scale == Approx(1.0 / 3));
  auto read = route::read_assembly(w.dir / "routed");
  CHECK(read.router == route::RouterKind::phatgoose);
  CHECK(read.top_k == 2);
  CHECK(read.base_fingerprint == w.fingerprint);
  CHECK(read.modules[0].rank == 3);

  c10::InferenceMode guard;
  auto b = batch();
  auto routed = model::load_t5(w.base);
  auto rm = route::RoutedModel::attach(*routed, w.dir / "routed", w.fingerprint);
  rm.enable_trace();
  auto got = routed->forward(b.ids, b.mask, b.dec);

  auto manual = model::load_t5(w.base);
  auto plain = manual->forward(b.ids, b.mask, b.dec);
  for (const auto& m : manual->linear_names()) {
    auto [A, B] = w.stacked(m);
    at::Tensor gates = at::stack(
        [&] {
          std::vector<at::Tensor> g;
          for (const auto& e : w.experts) g.push_back(e.tensors.at(m + ".gate"));
          return g;
        }(),
        0);
    route::RoutedLinearOptions o;
    o.lora_scale = 1.0;
    manual->set_adapter(m, std::make_shared<route::RoutedLinear>(A, B, route::phatgoose_keys(gates), o));
  }
  auto want = manual->forward(b.ids, b.mask, b.dec);
  CHECK(max_diff(got, want) < 1e-4);
  CHECK(max_diff(got, plain) > 1e-3);  // the experts do something

  // The trace: every module saw its real tokens (padding is not counted), k slots each.
  auto trace = rm.trace_json();
  const std::int64_t enc_tokens = 10, dec_tokens = 10;
  for (const auto& [module, counts] : trace["modules"].items()) {
    std::int64_t sum = 0;
    for (const auto& c : counts) sum += c.get<std::int64_t>();
    const bool encoder_side = module.rfind("encoder.", 0) == 0 || module.find("EncDecAttention.k") != std::string::npos ||
                              module.find("EncDecAttention.v") != std::string::npos;
    INFO(module);
    CHECK(sum == 2 * (encoder_side ? enc_tokens : dec_tokens));
  }
}

TEST_CASE("assemble arrow, average activation, merged and single", "[route][assembly]") {
  World w(3);
  c10::InferenceMode guard;
  auto b = batch();
  auto plain = model::load_t5(w.base)->forward(b.ids, b.mask, b.dec);
  for (auto router : {route::RouterKind::arrow, route::RouterKind::average_activation, route::RouterKind::merged}) {
    INFO(route::router_name(router));
    auto o = w.options(router, std::string(route::router_name(router)));
    route::assemble(o);
    auto m = model::load_t5(w.base);
    route::RoutedModel::attach(*m, o.out_dir, w.fingerprint);
    auto y = m->forward(b.ids, b.mask, b.dec);
    CHECK(at::isfinite(y).all().item<bool>());
    CHECK(max_diff(y, plain) > 1e-3);
  }
  // merged equals the mean of the experts' updates, applied by hand.
  {
    auto m = model::load_t5(w.base);
    route::RoutedModel::attach(*m, w.dir / "merged", w.fingerprint);
    auto manual = model::load_t5(w.base);
    for (const auto& name : manual->linear_names()) {
      auto [A, B] = w.stacked(name);
      manual->set_adapter(name, std::make_shared<route::MergedLinear>(A, B, 1.0));
    }
    CHECK(max_diff(m->forward(b.ids, b.mask, b.dec), manual->forward(b.ids, b.mask, b.dec)) < 1e-4);
  }
  // single: the one expert as a plain LoRA model (W u + B A u / r on every module).
  auto o = w.options(route::RouterKind::single, "single");
  o.experts = {o.experts[1]};
  auto a = route::assemble(o);
  CHECK(a.experts.size() == 1);
  auto m = model::load_t5(w.base);
  route::RoutedModel::attach(*m, o.out_dir, w.fingerprint);
  struct Lora : model::LinearAdapter {
    at::Tensor A, B;
    double s;
    at::Tensor apply(const at::Tensor& u, const at::Tensor& base) override {
      return base + at::matmul(at::matmul(u, A.t()), B.t()) * s;
    }
  };
  auto manual = model::load_t5(w.base);
  for (const auto& name : manual->linear_names()) {
    auto l = std::make_shared<Lora>();
    l->A = w.experts[1].tensors.at(name + ".lora_A");
    l->B = w.experts[1].tensors.at(name + ".lora_B");
    l->s = 1.0 / w.experts[1].rank;
    manual->set_adapter(name, l);
  }
  CHECK(max_diff(m->forward(b.ids, b.mask, b.dec), manual->forward(b.ids, b.mask, b.dec)) < 1e-4);
}

TEST_CASE("assemble refuses bundles of another base, untrusted signers and a wrong base at load",
          "[route][assembly]") {
  World w(2);
  // A bundle bound to another base.
  Expert other = w.experts[0];
  other.name = "stranger";
  fs::path stranger = w.dir / "stranger";
  w.write_bundle(stranger, other, "sha256:" + std::string(64, 'a'));
  auto o = w.options(route::RouterKind::phatgoose, "out");
  o.experts.push_back(World::source("stranger", stranger));
  try {
    route::assemble(o);
    FAIL("assembled a bundle of another base");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::mismatch);
    CHECK_THAT(e.what(), Catch::Contains("bundle 'stranger/1.0.0'"));
  }
  CHECK_FALSE(fs::exists(w.dir / "out"));
  // A signer the trust file does not name.
  auto o2 = w.options(route::RouterKind::phatgoose, "out2");
  auto bob = bundle::generate_ed25519_keypair(w.dir / "bob", "bob@example.com");
  std::string openssh = bob.to_openssh();
  test::write_text(w.dir / "bob_trust", "bob@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
  o2.trust_file = w.dir / "bob_trust";
  try {
    route::assemble(o2);
    FAIL("assembled an untrusted bundle");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("bundle 'e0/1.0.0'"));
  }
  // k out of range.
  auto o3 = w.options(route::RouterKind::phatgoose, "out3");
  o3.top_k = 3;
  CHECK_THROWS_AS(route::assemble(o3), Error);
  // Loading onto another base.
  route::assemble(w.options(route::RouterKind::phatgoose, "ok"));
  auto m = model::load_t5(w.base);
  CHECK_THROWS_WITH(route::RoutedModel::attach(*m, w.dir / "ok", "sha256:" + std::string(64, 'b')),
                    Catch::Contains("was assembled on base"));
  // A tampered module file is named.
  test::write_text(w.dir / "ok/modules/encoder.block.0.layer.0.SelfAttention.q.safetensors", "junk");
  CHECK_THROWS_WITH(route::RoutedModel::attach(*m, w.dir / "ok", w.fingerprint),
                    Catch::Contains("encoder.block.0.layer.0.SelfAttention.q.safetensors"));
}

TEST_CASE("gaggle assemble and inspect on a pool", "[route][assembly][cli]") {
  World w(3);
  auto r = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                             w.trust.string(), "--router", "phatgoose", "--top-k", "2", "--out", (w.dir / "m").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("3 experts"));
  CHECK(fs::exists(w.dir / "m/assembly.json"));
  auto again = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                                 w.trust.string(), "--out", (w.dir / "m").string()});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("already exists"));
  auto subset = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                                  w.trust.string(), "--router", "single", "--expert", "e2", "--out",
                                  (w.dir / "s").string(), "-q"});
  CHECK(subset.exit_code == 0);
  CHECK(route::read_assembly(w.dir / "s").experts.at(0).name == "e2");
  auto bad = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                               w.trust.string(), "--router", "moe", "--out", (w.dir / "x").string()});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("phatgoose"));
  auto missing = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                                   w.trust.string(), "--experts", "nope", "--out", (w.dir / "y").string()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("'nope'"));
}

TEST_CASE("gaggle generate with a routed model writes a routing trace; inspect lists experts and signers",
          "[route][generate][cli]") {
  World w(3, false, true);
  REQUIRE(test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                            w.trust.string(), "--out", (w.dir / "m").string(), "-q"})
              .exit_code == 0);
  auto r = test::run_gaggle({"generate", "--model", (w.dir / "m").string(), "--max-new-tokens", "4", "--trace",
                             (w.dir / "trace.json").string()},
                            "hello world\nsecond line\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
  auto trace = nlohmann::json::parse(test::read_text(w.dir / "trace.json"));
  CHECK(trace["router"] == "phatgoose");
  CHECK(trace["experts"].size() == 3);
  CHECK(trace["modules"].size() == model::t5_linear_names(w.config).size());
  std::int64_t total = 0;
  for (const auto& c : trace["total"]) total += c.get<std::int64_t>();
  CHECK(total > 0);
  // The same through the base alone: no trace without a routed model.
  auto plain = test::run_gaggle({"generate", "--base", w.base.string(), "--input", "hello world", "--max-new-tokens", "4"});
  CHECK(plain.exit_code == 0);
  CHECK(test::run_gaggle({"generate", "--base", w.base.string(), "--trace", "x.json"}).exit_code == 2);
  CHECK(test::run_gaggle({"generate"}).exit_code == 2);

  auto inspect = test::run_gaggle({"inspect", (w.dir / "m").string()});
  REQUIRE(inspect.exit_code == 0);
  CHECK_THAT(inspect.out, Catch::Contains("phatgoose") && Catch::Contains("top-2") && Catch::Contains("e1@1.0.0") &&
                              Catch::Contains("alice@example.com") && Catch::Contains("3 experts"));
  auto json = test::run_gaggle({"inspect", "--json", (w.dir / "m").string()});
  REQUIRE(json.exit_code == 0);
  CHECK(nlohmann::json::parse(json.out)["experts"][2]["name"] == "e2");
}
