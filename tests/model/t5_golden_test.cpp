// The T5 model against Hugging Face's own outputs (tests/data/golden, golden/README.md),
// and the properties the issue asks for: padding, the KV cache, the hook point.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "io/error.h"
#include "io/json_file.h"
#include "model/conformance.h"
#include "model/scoring.h"
#include "model/t5.h"
#include "support/test_devices.h"
#include "support/test_support.h"

using namespace gaggle;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Walks `want` and checks `got` has the same structure: integers exact, floats within tol.
void compare(const json& want, const json& got, const std::string& path, double tol, double& max_diff, int& mismatches) {
  if (want.is_array()) {
    if (!got.is_array() || got.size() != want.size()) {
      ++mismatches;
      UNSCOPED_INFO(path << ": shape differs");
      return;
    }
    for (std::size_t i = 0; i < want.size(); ++i) compare(want[i], got[i], path + "[" + std::to_string(i) + "]", tol, max_diff, mismatches);
  } else if (want.is_null()) {
    if (!got.is_null()) ++mismatches;
  } else if (want.is_number_integer()) {
    if (!got.is_number_integer() || got.get<std::int64_t>() != want.get<std::int64_t>()) {
      ++mismatches;
      UNSCOPED_INFO(path << ": want " << want << " got " << got);
    }
  } else {
    double d = got.is_number() ? std::abs(got.get<double>() - want.get<double>()) : INFINITY;
    max_diff = std::max(max_diff, d);
    if (!(d <= tol)) {
      ++mismatches;
      if (mismatches < 5) UNSCOPED_INFO(path << ": want " << want << " got " << got);
    }
  }
}

const json& at_path(const json& j, const std::string& dotted) {
  const json* p = &j;
  std::stringstream ss(dotted);
  std::string part;
  while (std::getline(ss, part, '.')) p = &p->at(part);
  return *p;
}

at::Tensor ids(const json& j) {
  std::vector<std::int64_t> flat;
  std::int64_t rows = j.size(), cols = j[0].size();
  for (const auto& r : j)
    for (const auto& v : r) flat.push_back(v.get<std::int64_t>());
  return at::tensor(flat, at::kLong).view({rows, cols});
}

}  // namespace

TEST_CASE("T5 matches Hugging Face on the golden cases", "[model][t5]") {
  auto name = GENERATE(as<std::string>{}, "t5-v1_0-tiny", "t5-v1_1-tiny");
  auto device = GENERATE(from_range(test::test_devices()));
  INFO("device " << device);
  const fs::path dir = test::data_dir() / "golden" / name;
  auto model = model::load_t5(dir, {device});
  const json want = io::read_json_file(dir / "case.json");
  const json got = model::run_t5_case(*model, want, name);
  for (const char* key : {"encoder_last_hidden_state", "logits", "label_logits", "label_token_logprobs", "label_nll_sum",
                          "label_nll_mean", "hf_loss_batch", "labels_decoder_input_ids", "rank_classification.token_logprobs",
                          "rank_classification.nll_sum", "rank_classification.nll_mean", "rank_classification.pred_by_sum",
                          "rank_classification.pred_by_mean", "greedy.output_ids", "greedy.output_ids_ignore_eos"}) {
    double max_diff = 0;
    int mismatches = 0;
    compare(at_path(want, key), at_path(got, key), key, 1e-4, max_diff, mismatches);
    INFO(name << " " << key << ": max abs diff " << max_diff);
    CHECK(mismatches == 0);
  }
  // hf_loss_single[i]: each sequence alone, unpadded.
  at::Tensor input_ids = ids(want["input_ids"]), mask = ids(want["attention_mask"]), labels = ids(want["labels"]);
  for (std::int64_t b = 0; b < input_ids.size(0); ++b) {
    std::int64_t len = mask[b].sum().item<std::int64_t>();
    std::int64_t llen = (labels[b] != -100).sum().item<std::int64_t>();
    at::NoGradGuard no_grad;
    at::Tensor nll = model->token_nll(input_ids[b].slice(0, 0, len).unsqueeze(0), at::ones({1, len}, at::kLong),
                                      labels[b].slice(0, 0, llen).unsqueeze(0));
    CHECK(nll.mean().item<double>() == Approx(want["hf_loss_single"][b].get<double>()).margin(1e-4));
  }
}

TEST_CASE("a padded batch equals each sequence alone", "[model][t5]") {
  auto name = GENERATE(as<std::string>{}, "t5-v1_0-tiny", "t5-v1_1-tiny");
  auto model = model::load_t5(test::data_dir() / "golden" / name);
  c10::InferenceMode guard;
  std::vector<std::vector<std::int64_t>> inputs = {{5, 17, 33, 9, 61, 2, 44, 1}, {8, 1}, {70, 71, 72, 1}};
  std::vector<std::vector<std::int64_t>> targets = {{4, 5, 1}, {6, 7, 8, 9, 1}, {1}};
  auto batch = model::make_batch(inputs, targets, 0);
  CHECK(batch.input_ids.sizes() == at::IntArrayRef({3, 8}));
  CHECK(batch.labels[2][1].item<std::int64_t>() == -100);
  at::Tensor enc = model->encode(batch.input_ids, batch.attention_mask);
  at::Tensor nll = model->token_nll(batch.input_ids, batch.attention_mask, batch.labels);
  at::Tensor gen = model->greedy(batch.input_ids, batch.attention_mask, 6, false);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto one = model::make_batch({inputs[i]}, {targets[i]}, 0);
    const auto len = static_cast<std::int64_t>(inputs[i].size());
    const auto tlen = static_cast<std::int64_t>(targets[i].size());
    at::Tensor enc1 = model->encode(one.input_ids, one.attention_mask);
    CHECK(at::allclose(enc[i].slice(0, 0, len), enc1[0], 1e-5, 1e-5));
    at::Tensor nll1 = model->token_nll(one.input_ids, one.attention_mask, one.labels);
    CHECK(at::allclose(nll[i].slice(0, 0, tlen), nll1[0], 1e-5, 1e-5));
    CHECK(nll[i].slice(0, tlen).abs().sum().item<float>() == 0.0f);  // 0 at -100
    CHECK(at::equal(gen[i], model->greedy(one.input_ids, one.attention_mask, 6, false)[0]));
  }
  // Rank classification on the ragged inputs equals scoring each pair alone.
  std::vector<std::vector<std::vector<std::int64_t>>> choices = {{{4, 1}, {9, 9, 1}}, {{3, 1}}, {{4, 1}, {5, 1}, {6, 7, 1}}};
  auto scores = model::rank_classification_nll(*model, inputs, choices, {/*max_rows=*/2});
  REQUIRE(scores.size() == 3);
  for (std::size_t b = 0; b < 3; ++b) {
    REQUIRE(scores[b].size() == choices[b].size());
    for (std::size_t c = 0; c < choices[b].size(); ++c) {
      auto one = model::make_batch({inputs[b]}, {choices[b][c]}, 0);
      double alone = model->token_nll(one.input_ids, one.attention_mask, one.labels).mean().item<double>();
      CHECK(scores[b][c] == Approx(alone).margin(1e-5));
    }
  }
}

TEST_CASE("cached generation equals uncached", "[model][t5]") {
  auto name = GENERATE(as<std::string>{}, "t5-v1_0-tiny", "t5-v1_1-tiny");
  auto device = GENERATE(from_range(test::test_devices()));
  INFO("device " << device);
  auto model = model::load_t5(test::data_dir() / "golden" / name, {device});
  const model::TokenRows prompts = {{5, 17, 33, 9, 61, 2, 44, 1}, {8, 1}, {70, 71, 72, 1}};
  auto batch = model::make_batch(prompts, {}, 0);
  for (bool stop : {false, true}) {
    at::Tensor cached = model->greedy(batch.input_ids, batch.attention_mask, 25, stop);
    at::Tensor uncached = model->greedy_uncached(batch.input_ids, batch.attention_mask, 25, stop);
    CHECK(at::equal(cached, uncached));
  }
  // generate(): greedy's tokens after the start token, as host rows (from a GPU too).
  const model::TokenRows rows = model->generate(prompts, 25);
  const at::Tensor want =
      model->greedy(batch.input_ids, batch.attention_mask, 25, true).to(at::kCPU).slice(1, 1).contiguous();
  REQUIRE(rows.size() == prompts.size());
  for (std::size_t b = 0; b < rows.size(); ++b) {
    const at::Tensor row = want[static_cast<std::int64_t>(b)];
    CHECK(rows[b] ==
          std::vector<std::int64_t>(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel()));
  }
  // Step-by-step logits through the cache equal the full decoder pass.
  c10::InferenceMode guard;
  at::Tensor enc = model->encode(batch.input_ids, batch.attention_mask);
  at::Tensor dec = at::randint(2, 96, {3, 21}, at::kLong);
  dec.select(1, 0).fill_(0);
  at::Tensor full = model->decode(dec, enc, batch.attention_mask);
  model::KvCache cache;
  std::vector<at::Tensor> steps;
  steps.push_back(model->decode(dec.slice(1, 0, 4), enc, batch.attention_mask, &cache));  // a 4-token prefix, then 1 by 1
  for (std::int64_t t = 4; t < 21; ++t) steps.push_back(model->decode(dec.slice(1, t, t + 1), enc, batch.attention_mask, &cache));
  CHECK(cache.length == 21);
  double diff = (at::cat(steps, 1) - full).abs().max().item<double>();
  INFO("max abs diff, stepwise vs full " << diff);
  CHECK(diff < 1e-4);
}

namespace {

struct ScaleAdapter : model::LinearAdapter {
  double scale;
  int calls = 0;
  at::IntArrayRef last_u;
  std::vector<std::int64_t> u_shape;
  explicit ScaleAdapter(double s) : scale(s) {}
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override {
    ++calls;
    u_shape = u.sizes().vec();
    return base_out * scale;
  }
};

}  // namespace

TEST_CASE("every linear layer is addressable by its HF path", "[model][t5][hook]") {
  auto model = model::load_t5(test::data_dir() / "golden/t5-v1_1-tiny");
  auto names = model->linear_names();
  // 2 encoder blocks x (4 + 3) + 3 decoder blocks x (8 + 3)
  CHECK(names.size() == 2 * 7 + 3 * 11);
  CHECK(names.front() == "encoder.block.0.layer.0.SelfAttention.q");
  CHECK(std::count(names.begin(), names.end(), "decoder.block.2.layer.2.DenseReluDense.wi_1") == 1);
  CHECK(model->linear_weight("decoder.block.1.layer.1.EncDecAttention.o").sizes() == at::IntArrayRef({32, 32}));
  CHECK(model->linear_weight("encoder.block.0.layer.1.DenseReluDense.wi_0").sizes() == at::IntArrayRef({64, 32}));
  // The weight is the parameter itself (same storage), named as in the checkpoint.
  CHECK(model->linear_weight("encoder.block.0.layer.0.SelfAttention.k").data_ptr() ==
        model->named_parameters()["encoder.block.0.layer.0.SelfAttention.k.weight"].data_ptr());

  c10::InferenceMode guard;
  auto batch = model::make_batch({{5, 17, 33, 1}, {8, 1}}, {}, 0);
  at::Tensor dec = at::zeros({2, 3}, at::kLong);
  at::Tensor before = model->forward(batch.input_ids, batch.attention_mask, dec);
  auto identity = std::make_shared<ScaleAdapter>(1.0);
  for (const auto& n : names) model->set_adapter(n, identity);
  at::Tensor same = model->forward(batch.input_ids, batch.attention_mask, dec);
  CHECK(at::equal(before, same));
  CHECK(identity->calls == static_cast<int>(names.size()));  // every linear went through the hook once
  auto scale = std::make_shared<ScaleAdapter>(0.5);
  model->set_adapter("encoder.block.1.layer.1.DenseReluDense.wo", scale);
  at::Tensor changed = model->forward(batch.input_ids, batch.attention_mask, dec);
  CHECK_FALSE(at::allclose(before, changed));
  CHECK(scale->u_shape == std::vector<std::int64_t>{2, 4, 64});  // [B, S, d_in]
  model->clear_adapters();
  CHECK(model->adapter("encoder.block.1.layer.1.DenseReluDense.wo") == nullptr);
  CHECK(at::equal(before, model->forward(batch.input_ids, batch.attention_mask, dec)));
  CHECK_THROWS_AS(model->set_adapter("encoder.block.9.layer.0.SelfAttention.q", identity), Error);
  try {
    model->linear_weight("lm_head");
    FAIL("lm_head is not a hookable linear");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK_THAT(e.what(), Catch::Contains("lm_head"));
  }
}

TEST_CASE("token_nll is differentiable for training", "[model][t5]") {
  model::T5Config c;
  c.vocab_size = 50, c.d_model = 16, c.d_kv = 4, c.d_ff = 32, c.num_layers = 1, c.num_decoder_layers = 1, c.num_heads = 4;
  c.relative_attention_num_buckets = 8, c.relative_attention_max_distance = 16, c.gated = true;
  at::manual_seed(3);
  auto model = model::make_t5(c);
  auto batch = model::make_batch({{5, 7, 9, 1}}, {{3, 4, 1}}, 0);
  at::Tensor loss = model->token_nll(batch.input_ids, batch.attention_mask, batch.labels).sum();
  loss.backward();
  at::Tensor g = model->linear_weight("decoder.block.0.layer.2.DenseReluDense.wo").grad();
  REQUIRE(g.defined());
  CHECK(g.abs().sum().item<double>() > 0);
  // make_t5 is seeded by manual_seed.
  at::manual_seed(3);
  auto again = model::make_t5(c);
  CHECK(at::equal(again->shared_weight(), model->shared_weight()));
}

TEST_CASE("greedy stopping at eos follows Hugging Face generate", "[model][t5]") {
  auto model = model::load_t5(test::data_dir() / "golden/t5-v1_1-tiny");
  auto batch = model::make_batch({{5, 17, 33, 9, 61, 2, 44, 1}, {8, 1}, {70, 71, 72, 1}, {74, 55, 91, 1}}, {}, 0);
  const std::int64_t eos = model->config().eos_token_id, pad = model->config().pad_token_id;
  at::Tensor free_run = model->greedy(batch.input_ids, batch.attention_mask, 12, false);
  // Make eos the answer wherever the model would say the token it says most often in
  // the 3rd position of row 0, so that rows finish at different steps.
  const std::int64_t frequent = free_run[0][3].item<std::int64_t>();
  {
    at::NoGradGuard no_grad;
    at::Tensor w = model->lm_head_weight();
    w[eos].copy_(w[frequent] * 1.5);
  }
  at::Tensor ignoring = model->greedy(batch.input_ids, batch.attention_mask, 12, false);
  at::Tensor stopping = model->greedy(batch.input_ids, batch.attention_mask, 12, true);
  // The expectation, from the run that ignores eos: after a row's first eos, pad; stop
  // once every row has finished.
  at::Tensor want = ignoring.clone();
  std::int64_t last_needed = 0;
  bool any_eos = false, all_eos = true;
  for (std::int64_t b = 0; b < want.size(0); ++b) {
    std::int64_t first = -1;
    for (std::int64_t t = 1; t < want.size(1); ++t)
      if (want[b][t].item<std::int64_t>() == eos) {
        first = t;
        break;
      }
    any_eos |= first >= 0;
    all_eos &= first >= 0;
    if (first >= 0) want[b].slice(0, first + 1).fill_(pad);
    last_needed = std::max(last_needed, first >= 0 ? first : want.size(1) - 1);
  }
  REQUIRE(any_eos);  // the edit above made eos appear
  if (all_eos) want = want.slice(1, 0, last_needed + 1);
  INFO("ignoring eos:\n" << ignoring << "\nstopping:\n" << stopping);
  CHECK(at::equal(stopping, want));
  CHECK(at::equal(stopping, model->greedy_uncached(batch.input_ids, batch.attention_mask, 12, true)));
}
