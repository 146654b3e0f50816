// Gate separation (bundle/gate_separation.h): the cosines and the self top-1 share of a
// pool's gates, against values worked out by hand for vectors built to have them.
#include <catch2/catch.hpp>

#include <cmath>

#include "bundle/gate_separation.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

// d = 4 vectors with mean 0 and equal norms: LayerNorm only rescales them, so cosines are
// those of the raw vectors.
const std::vector<float> e1{1, -1, 0, 0}, e2{0, 0, 1, -1}, e3{1, 1, -1, -1};

fs::path adapter(const fs::path& dir, const std::string& name, const std::vector<float>& gate,
                 const std::vector<float>& avg_act, bool with_decoder = true) {
  io::SafetensorsWriter w;
  w.add_f32("encoder.block.0.layer.0.SelfAttention.q.gate", {4}, gate);
  w.add_f32("encoder.block.0.layer.0.SelfAttention.q.avg_act", {4}, avg_act);
  if (with_decoder) {
    w.add_f32("decoder.block.1.layer.1.EncDecAttention.k.gate", {4}, gate);
    w.add_f32("decoder.block.1.layer.1.EncDecAttention.k.avg_act", {4}, avg_act);
  }
  w.add_f32("encoder.block.0.layer.0.SelfAttention.q.lora_A", {1, 4}, std::vector<float>{1, 2, 3, 4});
  fs::path p = dir / (name + ".safetensors");
  w.write(p);
  return p;
}

}  // namespace

TEST_CASE("gate separation: cosines, own alignment and self top-1 per layer", "[bundle][gates]") {
  TempDir dir;
  // Expert a: gate e1, typical input e1 (aligned). Expert b: gate e2, typical input e1,
  // so a's gate scores b's input higher than b's own gate does.
  std::vector<bundle::GateSource> pool{{"a@1.0.0", adapter(dir.path(), "a", e1, e1)},
                                       {"b@1.0.0", adapter(dir.path(), "b", e2, e1)}};
  auto s = bundle::measure_gate_separation(pool);
  REQUIRE(s.layers.size() == 2);
  CHECK(s.layers[0].layer == "decoder.block.1");  // the order of the file (sorted names)
  CHECK(s.layers[1].layer == "encoder.block.0");
  CHECK(s.overall.modules == 2);
  CHECK(s.overall.gate_cosine == Approx(0.0).margin(1e-9));      // e1 . e2 = 0
  CHECK(s.overall.avg_act_cosine == Approx(1.0));                // both e1
  CHECK(s.overall.own_alignment == Approx(0.5));                 // (1 + 0) / 2
  CHECK(s.overall.self_top1 == Approx(0.5));                     // a wins, b loses
  REQUIRE(s.expert_self_top1.size() == 2);
  CHECK(s.expert_self_top1[0] == Approx(1.0));
  CHECK(s.expert_self_top1[1] == Approx(0.0));

  // Three experts, gates e1, e2, e3 and each input its own gate: every expert finds
  // itself; cos(e1, e3) = cos(e2, e3) = 0.
  std::vector<bundle::GateSource> three{{"a", adapter(dir.path(), "x", e1, e1)},
                                        {"b", adapter(dir.path(), "y", e2, e2)},
                                        {"c", adapter(dir.path(), "z", e3, e3)}};
  auto t = bundle::measure_gate_separation(three);
  CHECK(t.overall.self_top1 == Approx(1.0));
  CHECK(t.overall.own_alignment == Approx(1.0));
  CHECK(t.overall.gate_cosine == Approx(0.0).margin(1e-9));

  // A gate with an offset and a scale standardises to the same key (LayerNorm).
  std::vector<float> shifted{13, 7, 10, 10};  // 3 * e1 + 10
  auto u = bundle::measure_gate_separation({{"a", adapter(dir.path(), "s", shifted, e1)}, {"b", pool[1].safetensors}});
  CHECK(u.overall.own_alignment == Approx(0.5).epsilon(1e-4));
}

TEST_CASE("gate separation: centred top-1 removes the input every expert shares", "[bundle][gates]") {
  TempDir dir;
  // Gates e1 and e2. Expert a's typical input is 3 e1; expert b's is e2 + 2 e1: the part
  // both share (along e1) makes a's gate score b's input highest, so b never finds itself
  // (self top-1 1/2). Less the mean of the two standardised inputs, each input points to
  // its own gate: LN(a) - m = 0.075 e1 - 0.316 e2 and LN(b) - m its negative, scoring
  // 0.21 / -0.89 and -0.21 / 0.89 against the gates (worked out by hand).
  const std::vector<float> hub_input{3, -3, 0, 0}, shared_input{2, -2, 1, -1};
  auto s = bundle::measure_gate_separation({{"a", adapter(dir.path(), "a", e1, hub_input)},
                                            {"b", adapter(dir.path(), "b", e2, shared_input)}});
  CHECK(s.overall.self_top1 == Approx(0.5));
  CHECK(s.overall.centred_top1 == Approx(1.0));
  REQUIRE(s.layers.size() == 2);
  CHECK(s.layers[0].centred_top1 == Approx(1.0));

  // Inputs that share nothing: centring changes no winner.
  auto t = bundle::measure_gate_separation({{"x", adapter(dir.path(), "x", e1, e1)},
                                            {"y", adapter(dir.path(), "y", e2, e1)}});
  CHECK(t.overall.self_top1 == Approx(0.5));
  CHECK(t.overall.centred_top1 == Approx(0.0));  // both inputs e1: centred to zero, every score ties
}

TEST_CASE("gate separation: modules some expert lacks are skipped; bad pools are refused", "[bundle][gates]") {
  TempDir dir;
  auto s = bundle::measure_gate_separation({{"a", adapter(dir.path(), "a", e1, e1)},
                                            {"b", adapter(dir.path(), "b", e2, e2, /*with_decoder=*/false)}});
  CHECK(s.overall.modules == 1);
  CHECK(s.skipped_modules == 1);
  CHECK_THROWS_WITH(bundle::measure_gate_separation({{"a", dir / "a.safetensors"}}), Catch::Contains("at least two"));
  io::SafetensorsWriter w;
  w.add_f32("encoder.block.0.layer.0.SelfAttention.q.gate", {2}, std::vector<float>{1, 2});
  w.add_f32("encoder.block.0.layer.0.SelfAttention.q.avg_act", {2}, std::vector<float>{1, 2});
  w.write(dir / "small.safetensors");
  CHECK_THROWS_WITH(bundle::measure_gate_separation({{"a", dir / "a.safetensors"}, {"s", dir / "small.safetensors"}}),
                    Catch::Contains("small.safetensors") && Catch::Contains("another size"));
}

TEST_CASE("layer_of cuts a module path after its block number", "[bundle][gates]") {
  CHECK(bundle::layer_of("encoder.block.3.layer.0.SelfAttention.q") == "encoder.block.3");
  CHECK(bundle::layer_of("model.layers.12.self_attn.q_proj") == "model.layers.12");
  CHECK(bundle::layer_of("lm_head") == "lm_head");
}
