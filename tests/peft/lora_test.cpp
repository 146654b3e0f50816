// LibTorch pulls in glog, whose CHECK() aborts instead of reporting: include torch first,
// drop glog's macro, then Catch.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include "io/error.h"
#include "model/t5.h"
#include "peft/lora.h"
#include "support/test_support.h"

using namespace gaggle;

namespace {

model::T5Config tiny_config() {
  model::T5Config c;
  c.vocab_size = 64;
  c.d_model = 16;
  c.d_kv = 4;
  c.d_ff = 24;
  c.num_layers = 1;
  c.num_decoder_layers = 1;
  c.num_heads = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.gated = true;
  c.tie_word_embeddings = false;
  return c;
}

}  // namespace

TEST_CASE("a fresh LoRA adapter leaves the layer unchanged and has the paper's init", "[peft][lora]") {
  torch::manual_seed(0);
  peft::LoraAdapter lora(256, 128, peft::LoraOptions{});
  CHECK(lora->lora_a.sizes() == torch::IntArrayRef({16, 256}));
  CHECK(lora->lora_b.sizes() == torch::IntArrayRef({128, 16}));
  CHECK(lora->lora_b.abs().max().item<float>() == 0.0f);
  CHECK(lora->lora_a.std().item<double>() == Approx(0.01).epsilon(0.05));
  CHECK(lora->scale() == Approx(1.0 / 16));
  auto u = torch::randn({2, 3, 256});
  auto base = torch::randn({2, 3, 128});
  CHECK(torch::equal(lora->apply(u, base), base));
  CHECK(lora->lora_a.requires_grad());
  CHECK(lora->lora_b.requires_grad());
  CHECK_FALSE(lora->gate.defined());
}

TEST_CASE("the LoRA update is B A u alpha/r, and the gate scales it by sigmoid(v.u)", "[peft][lora]") {
  torch::manual_seed(1);
  peft::LoraOptions o;
  o.rank = 4;
  o.alpha = 2.0;
  peft::LoraAdapter lora(8, 6, o);
  torch::NoGradGuard no_grad;
  lora->lora_b.copy_(torch::randn({6, 4}));
  auto u = torch::randn({5, 8});
  auto base = torch::randn({5, 6});
  auto expected = base + torch::matmul(u, torch::matmul(lora->lora_b, lora->lora_a).t()) * (2.0 / 4);
  CHECK(torch::allclose(lora->apply(u, base), expected, 1e-5, 1e-6));

  lora->set_mode(peft::LoraMode::gate);
  REQUIRE(lora->gate.defined());
  CHECK(lora->gate.abs().sum().item<float>() == 0.0f);
  CHECK(lora->gate.requires_grad());
  CHECK_FALSE(lora->lora_a.requires_grad());
  CHECK_FALSE(lora->lora_b.requires_grad());
  // A zero gate halves the update (sigmoid(0) = 1/2).
  auto half = base + (expected - base) * 0.5;
  CHECK(torch::allclose(lora->apply(u, base), half, 1e-5, 1e-6));
  lora->gate.copy_(torch::randn({8}));
  auto g = torch::sigmoid(torch::matmul(u, lora->gate)).unsqueeze(-1);
  CHECK(torch::allclose(lora->apply(u, base), base + (expected - base) * g, 1e-5, 1e-6));
}

TEST_CASE("select_targets: the paper's default, suffixes, regexes and errors", "[peft][lora]") {
  auto names = model::t5_linear_names(tiny_config());
  auto all = peft::select_targets(names, "all");
  // encoder: q k v o wi_0 wi_1 wo = 7; decoder: 4 self + 4 cross + 3 ffn = 11
  CHECK(all.size() == 18);
  CHECK(all == names);
  auto qv = peft::select_targets(names, "q,v");
  CHECK(qv.size() == 6);
  for (const auto& n : qv) CHECK((n.back() == 'q' || n.back() == 'v'));
  auto cross = peft::select_targets(names, "EncDecAttention.o");
  REQUIRE(cross.size() == 1);
  CHECK(cross[0] == "decoder.block.0.layer.1.EncDecAttention.o");
  auto enc = peft::select_targets(names, "re:encoder\\..*DenseReluDense\\..*");
  CHECK(enc.size() == 3);
  CHECK_THROWS_AS(peft::select_targets(names, "nope"), Error);
  CHECK_THROWS_WITH(peft::select_targets(names, "re:(("), Catch::Contains("regular expression"));
  // "o" must not match "wo" (component boundary).
  for (const auto& n : peft::select_targets(names, "o")) CHECK(n.substr(n.size() - 2) == ".o");
}

TEST_CASE("LoraSet tensors round-trip through safetensors and are checked on import", "[peft][lora]") {
  test::TempDir dir;
  torch::manual_seed(2);
  peft::LoraSet set({{"encoder.block.0.layer.0.SelfAttention.q", {16, 16}}, {"decoder.block.0.layer.2.DenseReluDense.wo", {24, 16}}},
                    peft::LoraOptions{});
  {
    torch::NoGradGuard g;
    for (auto& [n, m] : set.modules()) m->lora_b.normal_();
  }
  set.set_mode(peft::LoraMode::gate);
  {
    torch::NoGradGuard g;
    for (auto& [n, m] : set.modules()) m->gate.normal_();
  }
  set.avg_act["encoder.block.0.layer.0.SelfAttention.q"] = torch::randn({16});
  auto tensors = set.export_tensors();
  CHECK(tensors.size() == 7);
  CHECK(tensors.at("decoder.block.0.layer.2.DenseReluDense.wo.lora_A").sizes() == torch::IntArrayRef({16, 24}));
  peft::write_tensors(dir / "adapter.safetensors", tensors);
  auto back = peft::read_tensors(dir / "adapter.safetensors");
  REQUIRE(back.size() == tensors.size());
  for (const auto& [k, t] : tensors) CHECK(torch::equal(back.at(k), t));
  CHECK(peft::modules_in(back).size() == 2);

  torch::manual_seed(3);
  peft::LoraSet other({{"encoder.block.0.layer.0.SelfAttention.q", {16, 16}}, {"decoder.block.0.layer.2.DenseReluDense.wo", {24, 16}}},
                      peft::LoraOptions{});
  other.import_tensors(back, "adapter.safetensors");
  auto again = other.export_tensors();
  for (const auto& [k, t] : tensors) CHECK(torch::equal(again.at(k), t));

  peft::LoraOptions r8;
  r8.rank = 8;
  peft::LoraSet wrong({{"encoder.block.0.layer.0.SelfAttention.q", {16, 16}}, {"decoder.block.0.layer.2.DenseReluDense.wo", {24, 16}}}, r8);
  CHECK_THROWS_WITH(wrong.import_tensors(back, "adapter.safetensors"),
                    Catch::Contains("adapter.safetensors") && Catch::Contains("lora_A") && Catch::Contains("expected [8, "));
}

TEST_CASE("LoRA attached to a T5 model: zero B is the base, a trained B changes the output", "[peft][lora]") {
  torch::manual_seed(4);
  auto t5 = model::make_t5(tiny_config());
  t5->eval();
  auto ids = torch::tensor({{5, 9, 12, 1}}, torch::kLong);
  auto mask = torch::ones({1, 4}, torch::kLong);
  auto dec = torch::tensor({{0, 7, 3}}, torch::kLong);
  torch::NoGradGuard no_grad;
  auto base = t5->forward(ids, mask, dec);
  std::vector<std::pair<std::string, peft::LinearShape>> modules;
  for (const auto& n : peft::select_targets(t5->linear_names(), "all")) {
    auto w = t5->linear_weight(n);
    modules.push_back({n, {w.size(1), w.size(0)}});
  }
  peft::LoraSet set(modules, peft::LoraOptions{});
  for (auto& [n, m] : set.modules()) t5->set_adapter(n, m.ptr());
  CHECK(torch::allclose(t5->forward(ids, mask, dec), base, 1e-6, 1e-6));
  for (auto& [n, m] : set.modules()) m->lora_b.fill_(0.5);
  CHECK_FALSE(torch::allclose(t5->forward(ids, mask, dec), base, 1e-3, 1e-3));
  t5->clear_adapters();
  CHECK(torch::allclose(t5->forward(ids, mask, dec), base, 1e-6, 1e-6));
}
