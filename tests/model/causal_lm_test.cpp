// A decoder-only base as a BaseModel (issue #14, "Decoder-only bases"): the loss is on
// the target tokens only, rank classification is the summed log-probability of each
// choice after the prompt, and the prompt's retrieval embedding is the base's final
// hidden state mean-pooled over the prompt — each checked against a hand computation
// from the model's own full-sequence logits.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "model/causal_lm.h"
#include "model/llama.h"
#include "model/scoring.h"
#include "model/t5.h"
#include "model/token_format.h"

using namespace gaggle;

namespace {

model::LlamaModel tiny_llama(std::uint64_t seed = 3) {
  model::LlamaConfig c;
  c.vocab_size = 40, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8;
  c.max_position_embeddings = 64, c.bos_token_id = 1, c.eos_token_id = 2;
  at::manual_seed(seed);
  return model::make_llama(c, 0.3);
}

// -log p(target_j | prompt, target_<j) from one unpadded forward of prompt ++ target.
std::vector<double> hand_nll(model::LlamaModelImpl& m, const std::vector<std::int64_t>& prompt,
                             const std::vector<std::int64_t>& target) {
  std::vector<std::int64_t> seq = prompt;
  seq.insert(seq.end(), target.begin(), target.end());
  c10::InferenceMode guard;
  at::Tensor logp = at::log_softmax(m.forward(at::tensor(seq, at::kLong).unsqueeze(0))[0].to(at::kDouble), -1);
  std::vector<double> out;
  for (std::size_t j = 0; j < target.size(); ++j)
    out.push_back(-logp[static_cast<std::int64_t>(prompt.size() + j - 1)][target[j]].item<double>());
  return out;
}

}  // namespace

TEST_CASE("causal LM: only the positions that predict a target token enter the loss", "[model][causal_lm]") {
  at::manual_seed(0);
  // Two rows prompt ++ target, prompts of 3 and 1 tokens, targets of 2 and 3 (row 0 padded).
  at::Tensor logits = at::randn({2, 5, 7});
  at::Tensor prompt_lengths = at::tensor(std::vector<std::int64_t>{3, 1}, at::kLong);
  at::Tensor labels = at::tensor(std::vector<std::int64_t>{4, 6, -100, 0, 5, 3}, at::kLong).view({2, 3});
  at::Tensor nll = model::target_token_nll(model::target_rows(logits, prompt_lengths, 3), labels);
  // By hand: row b's target j is predicted at position prompt_b - 1 + j.
  auto logp = at::log_softmax(logits.to(at::kDouble), -1);
  CHECK(nll[0][0].item<double>() == Approx(-logp[0][2][4].item<double>()).epsilon(1e-6));
  CHECK(nll[0][1].item<double>() == Approx(-logp[0][3][6].item<double>()).epsilon(1e-6));
  CHECK(nll[0][2].item<double>() == 0.0);
  CHECK(nll[1][0].item<double>() == Approx(-logp[1][0][0].item<double>()).epsilon(1e-6));
  CHECK(nll[1][1].item<double>() == Approx(-logp[1][1][5].item<double>()).epsilon(1e-6));
  CHECK(nll[1][2].item<double>() == Approx(-logp[1][2][3].item<double>()).epsilon(1e-6));
  // Whatever the model predicts inside the prompt (row 0: positions 0, 1; the last prompt
  // position predicts the first target token) changes nothing.
  at::Tensor changed = logits.clone();
  changed[0].slice(0, 0, 2).normal_(0, 5);
  CHECK(at::equal(model::target_token_nll(model::target_rows(changed, prompt_lengths, 3), labels), nll));
  changed[0][2][4].add_(1.0);  // the logit of a target token where it is predicted
  CHECK_FALSE(at::equal(model::target_token_nll(model::target_rows(changed, prompt_lengths, 3), labels), nll));
}

TEST_CASE("causal LM: target_nll of a padded batch is the hand computation per example", "[model][causal_lm]") {
  auto m = tiny_llama();
  const model::TokenRows prompts = {{1, 7, 33, 9}, {1, 20}};
  const model::TokenRows targets = {{5, 2}, {11, 17, 3, 2}};
  at::Tensor nll = m->target_nll(prompts, targets);
  REQUIRE(nll.sizes() == at::IntArrayRef({2, 4}));
  for (std::size_t b = 0; b < 2; ++b) {
    auto want = hand_nll(*m, prompts[b], targets[b]);
    for (std::size_t j = 0; j < 4; ++j) {
      INFO("row " << b << " token " << j);
      if (j < want.size()) CHECK(nll[b][j].item<double>() == Approx(want[j]).epsilon(1e-4));
      else CHECK(nll[b][j].item<double>() == 0.0);
    }
  }
  // Differentiable: training's loss reaches the weights through the target positions.
  nll.sum().backward();
  CHECK(m->lm_head_weight().grad().defined());
}

TEST_CASE("causal LM: rank classification is the summed log-probability of each choice", "[model][causal_lm]") {
  auto m = tiny_llama();
  const model::TokenRows prompts = {{1, 7, 33}, {1, 20, 21, 22, 23}};
  const std::vector<model::TokenRows> choices = {{{5, 2}, {6, 8, 2}}, {{9, 2}, {10, 2}, {12, 13, 14, 2}}};
  for (std::int64_t max_rows : {1, 2, 64}) {
    model::RankOptions o;
    o.max_rows = max_rows;
    auto scores = model::rank_classification_nll(*m, prompts, choices, o);
    REQUIRE(scores.size() == 2);
    for (std::size_t b = 0; b < 2; ++b) {
      REQUIRE(scores[b].size() == choices[b].size());
      for (std::size_t c = 0; c < choices[b].size(); ++c) {
        double sum = 0;
        for (double v : hand_nll(*m, prompts[b], choices[b][c])) sum += v;
        INFO("max_rows " << max_rows << " input " << b << " choice " << c);
        CHECK(scores[b][c] == Approx(sum).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("causal LM: generate is greedy with the cache, and the prompt embedding pools the prompt",
          "[model][causal_lm]") {
  auto m = tiny_llama();
  // One batch, left-padded: each row as if decoded alone.
  const model::TokenRows prompts = {{1, 7, 33, 9}, {1, 20}, {1, 3, 3, 3, 8, 11}};
  auto out = m->generate(prompts, 5);
  REQUIRE(out.size() == 3);
  for (std::size_t b = 0; b < 3; ++b) {
    at::Tensor want = m->greedy_uncached(at::tensor(prompts[b], at::kLong), 5, true);
    CHECK(std::vector<std::int64_t>(want.data_ptr<std::int64_t>(), want.data_ptr<std::int64_t>() + want.numel()) == out[b]);
  }
  c10::InferenceMode guard;
  at::Tensor emb = m->prompt_embeddings(prompts);
  REQUIRE(emb.sizes() == at::IntArrayRef({3, 32}));
  at::Tensor h1 = m->hidden(at::tensor(prompts[1], at::kLong).unsqueeze(0))[0].mean(0);
  CHECK(at::allclose(emb[1], h1, 1e-5, 1e-5));
}

TEST_CASE("token formats: T5 ends prompts with EOS, Llama starts them with BOS", "[model][causal_lm]") {
  model::TokenFormat t5 = model::t5_token_format(1);
  CHECK(t5.prompt({5, 6}) == std::vector<std::int64_t>{5, 6, 1});
  CHECK(t5.target({7}) == std::vector<std::int64_t>{7, 1});
  CHECK(t5.truncate_prompt({5, 6, 7, 8, 1}, 3) == std::vector<std::int64_t>{5, 6, 1});
  model::LlamaConfig c;
  c.bos_token_id = 0, c.eos_token_id = 1;
  model::TokenFormat llama = model::llama_token_format(c);
  CHECK(llama.prompt({5, 6}) == std::vector<std::int64_t>{0, 5, 6});
  CHECK(llama.target({7}) == std::vector<std::int64_t>{7, 1});
  CHECK(llama.truncate_prompt({0, 5, 6, 7}, 3) == std::vector<std::int64_t>{0, 5, 6});
}
