#include <torch/torch.h>
#include <catch2/catch.hpp>

#include "eval/experts.h"
#include "eval/fixtures.h"
#include "eval/method.h"
#include "io/error.h"
#include "model/scoring.h"
#include "text/tokenizer.h"

using namespace gaggle;
using gaggle::test::TempDir;

namespace {

// The LoRA update written out by hand: W u + B A u / r.
class HandLora : public model::LinearAdapter {
 public:
  HandLora(torch::Tensor a, torch::Tensor b) : a_(std::move(a)), b_(std::move(b)) {}
  torch::Tensor apply(const torch::Tensor& u, const torch::Tensor& base_out) override {
    return base_out + torch::matmul(torch::matmul(u, a_.t()), b_.t()) / static_cast<double>(a_.size(0));
  }

 private:
  torch::Tensor a_, b_;
};

struct UnsignedPool {
  TempDir tmp;
  model::T5Model model{nullptr};
  std::string fingerprint;
  std::vector<eval::ExpertInfo> experts;
  UnsignedPool() {
    model = test::make_tiny_base(tmp / "base");
    fingerprint = model::base_fingerprint(tmp / "base");
    for (int i = 0; i < 3; ++i) {
      test::TinyExpertOptions o;
      o.name = std::string("expert") + static_cast<char>('a' + i);
      o.seed = 10 + i;
      o.fingerprint = fingerprint;
      test::make_tiny_expert(tmp / "pool" / o.name, *model, o);
    }
    experts = eval::read_pool_dir(tmp / "pool").experts;
  }
};

torch::Tensor logits_on_one_pair(model::T5ModelImpl& m) {
  torch::NoGradGuard g;
  auto ids = torch::tensor({{37, 1782, 19, 1}}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto dec = torch::tensor({{0, 71, 5}}, torch::kLong);
  return m.forward(ids, mask, dec);
}

}  // namespace

TEST_CASE("experts are read from a pool directory and stacked per module", "[eval][experts]") {
  UnsignedPool p;
  REQUIRE(p.experts.size() == 3);
  CHECK(p.experts[0].name == "experta");
  CHECK(p.experts[0].version == "1.0.0");
  auto stack = eval::load_experts(p.experts, p.fingerprint);
  CHECK(stack.modules.size() == p.model->linear_names().size());
  CHECK(stack.rank == 4);
  const std::string q = "encoder.block.0.layer.0.SelfAttention.q";
  CHECK(stack.A.at(q).sizes() == torch::IntArrayRef({3, 4, 16}));
  CHECK(stack.B.at(q).sizes() == torch::IntArrayRef({3, 8, 4}));
  CHECK(stack.gates.at(q).sizes() == torch::IntArrayRef({3, 16}));
  CHECK(stack.avg_act.at(q).sizes() == torch::IntArrayRef({3, 16}));
  CHECK(stack.retrieval.size() == 3);

  // Another base's expert is refused by name.
  try {
    eval::load_experts(p.experts, "sha256:" + std::string(64, '0'));
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::mismatch);
    CHECK_THAT(e.what(), Catch::Contains("experta@1.0.0"));
  }
}

TEST_CASE("a single expert adds B A u / r on every linear layer", "[eval][method]") {
  UnsignedPool p;
  auto stack = std::make_shared<const eval::ExpertStack>(eval::load_experts(p.experts, p.fingerprint));
  auto base = logits_on_one_pair(*p.model);
  auto single = eval::make_single_expert_method(stack, 1, "Single expertb@1.0.0", eval::MethodKind::single);
  CHECK_FALSE(single->zero_shot());
  single->attach(*p.model, 0);
  auto got = logits_on_one_pair(*p.model);
  p.model->clear_adapters();
  for (const auto& m : stack->modules)
    p.model->set_adapter(m, std::make_shared<HandLora>(stack->A.at(m)[1], stack->B.at(m)[1]));
  auto want = logits_on_one_pair(*p.model);
  CHECK((got - base).abs().max().item<double>() > 1e-3);
  CHECK((got - want).abs().max().item<double>() < 1e-4);
  p.model->clear_adapters();
  eval::make_base_method()->attach(*p.model, 0);
  CHECK((logits_on_one_pair(*p.model) - base).abs().max().item<double>() == 0.0);
}

TEST_CASE("token routers trace k slots per token in every module", "[eval][method]") {
  UnsignedPool p;
  auto stack = std::make_shared<const eval::ExpertStack>(eval::load_experts(p.experts, p.fingerprint));
  for (const std::string key : {"phatgoose", "arrow", "average-activation"}) {
    auto method = eval::make_router_method(stack, key, 2);
    CHECK(method->zero_shot());
    REQUIRE(method->trace());
    method->attach(*p.model, 0);
    logits_on_one_pair(*p.model);
    const auto& counts = method->trace()->counts;
    auto sum = [&](const std::string& m) {
      std::int64_t s = 0;
      for (auto v : counts.at(m)) s += v;
      return s;
    };
    CHECK(sum("encoder.block.1.layer.1.DenseReluDense.wi") == 4 * 2);   // 4 input tokens, k = 2
    CHECK(sum("decoder.block.0.layer.0.SelfAttention.q") == 3 * 2);     // 3 decoder tokens
    CHECK(sum("decoder.block.0.layer.1.EncDecAttention.k") == 4 * 2);   // keys come from the encoder
    method->trace()->reset();
    CHECK(method->trace()->total() == 0);
  }
  auto merged = eval::make_router_method(stack, "merged", 2);
  CHECK(merged->name() == "Merged");
  CHECK(merged->trace() == nullptr);
  p.model->clear_adapters();
}

TEST_CASE("retrieval sends an example to the expert with the nearest stored embedding", "[eval][method]") {
  UnsignedPool p;
  auto tok = text::Tokenizer::load(p.tmp / "base");
  const auto ids = tok.encode("The quick brown fox jumps over the lazy dog.");
  torch::Tensor query;
  {
    torch::NoGradGuard g;
    auto batch = model::make_batch({ids}, {}, 0);
    query = p.model->encode(batch.input_ids, batch.attention_mask).mean(1);  // [1, d]
  }
  test::TinyExpertOptions o;
  o.name = "nearest";
  o.seed = 99;
  o.fingerprint = p.fingerprint;
  o.retrieval = torch::cat({torch::randn({2, 16}), query * 3.0});  // cosine 1 with the query
  test::make_tiny_expert(p.tmp / "pool" / "nearest", *p.model, o);
  auto experts = eval::read_pool_dir(p.tmp / "pool").experts;
  REQUIRE(experts.size() == 4);
  REQUIRE(experts[3].name == "nearest");
  auto stack = std::make_shared<const eval::ExpertStack>(eval::load_experts(experts, p.fingerprint));
  auto retrieval = eval::make_router_method(stack, "retrieval", 2);
  auto groups = retrieval->assign(*p.model, {ids, tok.encode("something else entirely")});
  REQUIRE(groups.size() == 2);
  CHECK(groups[0] == 3);
}

TEST_CASE("a router that needs gates says how to get them", "[eval][method]") {
  TempDir tmp;
  auto m = test::make_tiny_base(tmp / "base");
  test::TinyExpertOptions o;
  o.name = "nogate";
  o.gates = false;
  o.manifest = false;
  test::make_tiny_expert(tmp / "pool" / "nogate", *m, o);
  auto experts = eval::read_pool_dir(tmp / "pool").experts;
  REQUIRE(experts.size() == 1);
  CHECK(experts[0].name == "nogate");
  auto stack = std::make_shared<const eval::ExpertStack>(eval::load_experts(experts, ""));
  for (const std::string key : {"phatgoose", "average-activation", "retrieval"}) {
    try {
      eval::make_router_method(stack, key, 2);
      FAIL("no error for " + key);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid);
      CHECK_THAT(e.what(), Catch::Contains("nogate"));
      CHECK_THAT(e.hint(), Catch::Contains("train-gate"));
    }
  }
  CHECK(eval::make_router_method(stack, "arrow", 2)->name() == "Arrow");
  CHECK_THROWS_AS(eval::make_router_method(stack, "smear", 2), Error);
}
