// What the T5 model tells its adapters before each stack (model::TokenContext): the
// encoder mask for encoder modules and cross-attention k/v, the decoder positions for the
// other decoder modules (causal, with the cache's offset; labels -100 and positions after
// a row's EOS are not real), and the base encoding without adapters.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>

#include "model/t5.h"
#include "route/world.h"

using namespace gaggle;

namespace {

// Records every context it is told; changes nothing unless `boost` is set (then adds
// `boost` to row 0 of its output).
struct Recorder : model::LinearAdapter {
  std::vector<model::TokenContext> told;
  at::Tensor boost;
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base) override {
    if (!boost.defined()) return base;
    auto out = base.clone();
    out[0] += boost;
    return out;
  }
  void set_tokens(const model::TokenContext& c) override { told.push_back(c); }
};

}  // namespace

TEST_CASE("the T5 model tells its adapters which rows are real tokens", "[route][token_context]") {
  c10::InferenceMode guard;
  auto c = test::tiny_config();
  at::manual_seed(4);
  auto m = model::make_t5(c);
  m->eval();
  auto ids = at::randint(2, 40, {2, 5}, at::kLong);
  auto mask = at::ones({2, 5}, at::kLong);
  mask[1].narrow(0, 3, 2).zero_();
  auto plain_enc = m->encode(ids, mask);

  auto enc_q = std::make_shared<Recorder>(), cross_k = std::make_shared<Recorder>(), dec_q = std::make_shared<Recorder>();
  m->set_adapter("encoder.block.0.layer.0.SelfAttention.q", enc_q);
  m->set_adapter("decoder.block.0.layer.1.EncDecAttention.k", cross_k);
  m->set_adapter("decoder.block.1.layer.0.SelfAttention.q", dec_q);
  // Encoding: the encoder phase (mask, ids, the base encoding), then the encoded output.
  enc_q->boost = at::ones({c.inner_dim()});
  auto enc = m->encode(ids, mask);
  REQUIRE(enc_q->told.size() == 2);
  const auto& before = enc_q->told[0];
  CHECK(before.phase == model::TokenContext::Phase::encoder);
  CHECK(at::equal(before.mask, mask));
  CHECK(at::equal(before.input_ids, ids));
  CHECK_FALSE(before.causal);
  CHECK(at::equal(before.base_encoding(), plain_enc));  // adapters off, although this one changes row 0
  CHECK_FALSE(at::equal(enc, plain_enc));
  CHECK(enc_q->told[1].phase == model::TokenContext::Phase::encoded);
  CHECK(at::equal(enc_q->told[1].encoder_hidden, enc));
  CHECK(enc_q->told[1].pass != before.pass);
  enc_q->boost = at::Tensor();
  CHECK(cross_k->told.empty());

  // Teacher forcing: decoder positions are real where labels are not -100.
  auto labels = at::randint(2, 40, {2, 4}, at::kLong);
  labels[0][3] = -100;
  m->token_nll_from_encoded(enc, mask, labels);
  REQUIRE(dec_q->told.size() == 1);
  CHECK(dec_q->told[0].phase == model::TokenContext::Phase::decoder);
  CHECK(dec_q->told[0].causal);
  CHECK(dec_q->told[0].offset == 0);
  CHECK(at::equal(dec_q->told[0].mask.to(at::kLong), (labels != -100).to(at::kLong)));
  REQUIRE(cross_k->told.size() == 1);
  CHECK_FALSE(cross_k->told[0].causal);
  CHECK(at::equal(cross_k->told[0].mask, mask));
  CHECK(cross_k->told[0].pass == dec_q->told[0].pass);

  // Cached decoding: one position at a time, the offset advancing.
  dec_q->told.clear();
  model::KvCache cache;
  auto dec = at::randint(2, 40, {2, 3}, at::kLong);
  for (std::int64_t t = 0; t < 3; ++t) m->decode(dec.narrow(1, t, 1), enc, mask, &cache);
  REQUIRE(dec_q->told.size() == 3);
  for (std::int64_t t = 0; t < 3; ++t) CHECK(dec_q->told[static_cast<std::size_t>(t)].offset == t);

  // Greedy with EOS: row 0 is pushed to EOS at once (its last decoder layer writes the EOS
  // embedding); its later positions are padding, not real tokens.
  auto eos_boost = std::make_shared<Recorder>();
  eos_boost->boost = m->lm_head_weight()[c.eos_token_id] * 1e3;
  m->set_adapter("decoder.block.1.layer.2.DenseReluDense.wo", eos_boost);
  for (bool cached : {true, false}) {
    INFO("cached " << cached);
    dec_q->told.clear();
    auto out = cached ? m->greedy(ids, mask, 4, true) : m->greedy_uncached(ids, mask, 4, true);
    REQUIRE(out.size(1) == 5);
    CHECK(out[0][1].item<std::int64_t>() == c.eos_token_id);
    CHECK((out[1] != c.eos_token_id).all().item<bool>());
    REQUIRE(dec_q->told.size() == 4);
    const auto& last = dec_q->told.back().mask;
    auto want = cached ? at::tensor({0, 1}, at::kLong).view({2, 1})
                       : at::tensor({1, 0, 0, 0, 1, 1, 1, 1}, at::kLong).view({2, 4});
    CHECK(at::equal(last.to(at::kLong), want));
  }
}
