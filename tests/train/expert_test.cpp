#include "train_fixture.h"  // torch first (glog's CHECK), then Catch

#include <catch2/catch.hpp>

#include "bundle/manifest.h"
#include "io/error.h"
#include "io/sha256.h"
#include "peft/lora.h"
#include "text/tokenizer.h"
#include "train/detail/model_ops.h"
#include "train/expert.h"
#include "train/gate.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

struct ExpertFixture {
  TempDir dir;
  fs::path base, data, expert;
  train::ExpertResult result;
};

// One tiny base and one trained expert, shared by the tests of this file.
const ExpertFixture& expert_fixture() {
  static ExpertFixture* f = [] {
    auto* f = new ExpertFixture;
    f->base = f->dir / "base";
    f->data = f->dir / "train.jsonl";
    f->expert = f->dir / "experts" / "toy";
    make_tiny_base(f->base);
    tasks::write_task_file(f->data, toy_examples());
    train::ExpertOptions o;
    o.base_dir = f->base;
    o.data = f->data;
    o.valid = f->data;  // a memorisation task: validate on what it learns
    o.out_dir = f->expert;
    o.name = "toy";
    o.loop.steps = 150;
    o.loop.batch_size = 8;
    o.loop.eval_every = 50;
    o.loop.save_every = 50;
    o.loop.seed = 3;
    f->result = train::train_expert(o);
    return f;
  }();
  return *f;
}

std::vector<std::vector<int64_t>> greedy_answers(model::T5ModelImpl& t5, const text::Tokenizer& tok,
                                                 const std::vector<tasks::Example>& examples) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& e : examples) {
    auto ids = tok.encode(e.input);
    auto input = torch::tensor(ids, torch::kLong).unsqueeze(0);
    auto mask = torch::ones_like(input);
    auto g = t5.greedy(input, mask, 4, true);
    std::vector<int64_t> row(g.data_ptr<int64_t>() + 1, g.data_ptr<int64_t>() + g.size(1));
    out.push_back(row);
  }
  return out;
}

}  // namespace

TEST_CASE("train-expert: the loss goes down on a toy task and the expert changes the model's answers",
          "[train][expert]") {
  const auto& f = expert_fixture();
  const auto& r = f.result;
  REQUIRE(fs::exists(f.expert / "manifest.json"));
  REQUIRE(fs::exists(f.expert / "adapter.safetensors"));
  REQUIRE(fs::exists(f.expert / "train-log.jsonl"));
  CHECK_FALSE(fs::exists(train::work_dir_for(f.expert)));  // the work directory is gone

  // The log: one line per 10 steps, validations at 50, 100, 150.
  auto log = train::read_train_log(f.expert / "train-log.jsonl");
  REQUIRE(log.size() == 15);
  CHECK(log.front()["step"] == 10);
  CHECK(log.back()["step"] == 150);
  CHECK(log[4].contains("valid_loss"));
  CHECK(log[4].contains("valid_accuracy"));
  const double first_loss = log.front()["loss"].get<double>();
  const double last_loss = log.back()["loss"].get<double>();
  INFO("first logged loss " << first_loss << ", last " << last_loss << ", best valid " << *r.loop.best_valid_loss);
  CHECK(last_loss < 0.5 * first_loss);
  REQUIRE(r.loop.best_valid_accuracy);
  CHECK(*r.loop.best_valid_accuracy >= 0.75);

  // The manifest describes the expert and lists every file.
  auto m = bundle::read_manifest(f.expert);
  CHECK(m.name == "toy");
  CHECK(m.base_fingerprint == r.base_fingerprint);
  CHECK(m.body["method"] == "lora");
  CHECK(m.body["rank"] == 16);
  CHECK(m.body["modules"].size() == 2 * 7 + 2 * 11);
  CHECK(m.body["training_data"]["examples"] == 16);
  CHECK(m.files.size() == 2);

  // The adapter holds A and B of every module, and B moved away from zero.
  auto tensors = peft::read_tensors(f.expert / "adapter.safetensors");
  CHECK(tensors.size() == 2 * 36);
  CHECK(tensors.at("encoder.block.0.layer.0.SelfAttention.q.lora_A").sizes() == torch::IntArrayRef({16, 32}));
  CHECK(tensors.at("decoder.block.1.layer.2.DenseReluDense.wo.lora_B").sizes() == torch::IntArrayRef({32, 16}));
  CHECK(tensors.at("decoder.block.1.layer.2.DenseReluDense.wo.lora_B").abs().max().item<float>() > 0);

  // The expert's answers: greedy decoding with the bundle attached, against the base alone.
  auto tok = text::Tokenizer::load(f.base);
  auto t5 = model::load_t5(f.base);
  auto examples = toy_examples();
  auto base_answers = greedy_answers(*t5, tok, examples);
  auto lora = train::detail::lora_for_tensors(*t5, tensors, bundle::LoraScaling{}, "adapter.safetensors");
  train::detail::attach(*t5, lora);
  auto expert_answers = greedy_answers(*t5, tok, examples);
  int changed = 0, right = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    changed += base_answers[i] != expert_answers[i];
    right += expert_answers[i] == tok.encode(examples[i].target);
  }
  INFO("changed " << changed << ", right " << right << " of " << examples.size());
  CHECK(changed >= 12);
  CHECK(right >= 12);
}

TEST_CASE("train-gate: only the gates train; avg_act and retrieval embeddings join the bundle", "[train][gate]") {
  const auto& f = expert_fixture();
  TempDir dir;
  fs::path expert = dir / "toy";
  fs::copy(f.expert, expert);
  auto before = peft::read_tensors(expert / "adapter.safetensors");
  const std::string base_before = io::sha256_file_hex(f.base / "model.safetensors");

  train::GateOptions o;
  o.base_dir = f.base;
  o.expert_dir = expert;
  o.data = f.data;
  o.loop.steps = 30;
  o.loop.batch_size = 8;
  o.loop.save_every = 10;
  o.avg_act_examples = 10;
  auto r = train::train_gate(o);
  CHECK(r.modules == 36);
  CHECK(r.avg_act_examples == 10);
  CHECK(r.embed_examples == 16);

  auto after = peft::read_tensors(expert / "adapter.safetensors");
  CHECK(after.size() == 4 * 36 + 1);
  for (const auto& [name, t] : before) CHECK(torch::equal(after.at(name), t));  // LoRA untouched
  int moved = 0;
  for (const auto& m : peft::modules_in(before)) {
    const auto& gate = after.at(m + ".gate");
    CHECK(gate.sizes() == after.at(m + ".lora_A").sizes().slice(1));
    moved += gate.abs().max().item<float>() > 0;
    const auto& act = after.at(m + ".avg_act");
    CHECK(act.sizes() == gate.sizes());
    CHECK(act.abs().max().item<float>() > 0);
  }
  CHECK(moved == 36);
  CHECK(after.at(train::kRetrievalEmbeddings).sizes() == torch::IntArrayRef({16, 32}));
  CHECK(io::sha256_file_hex(f.base / "model.safetensors") == base_before);  // the base stays frozen

  auto m = bundle::read_manifest(expert);
  CHECK(m.body["method"] == "phatgoose");
  CHECK(m.body["gate"]["steps"] == 30);
  CHECK(m.body["retrieval"]["examples"] == 16);
  CHECK(m.files.size() == 3);  // adapter.safetensors, gate-log.jsonl, train-log.jsonl
  CHECK(fs::exists(expert / "gate-log.jsonl"));
  CHECK_FALSE(fs::exists(train::work_dir_for(expert, "gate")));
}

TEST_CASE("train-gate refuses a base the expert was not trained on", "[train][gate]") {
  const auto& f = expert_fixture();
  TempDir dir;
  make_tiny_base(dir / "other", 99);
  train::GateOptions o;
  o.base_dir = dir / "other";
  o.expert_dir = f.expert;
  o.data = f.data;
  try {
    train::train_gate(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::mismatch);
    CHECK_THAT(std::string(e.what()), Catch::Contains("trained on base"));
  }
}

TEST_CASE("train-expert errors: existing output, empty data, targets over the limit", "[train][expert]") {
  const auto& f = expert_fixture();
  TempDir dir;
  train::ExpertOptions o;
  o.base_dir = f.base;
  o.data = f.data;
  o.out_dir = f.expert;
  o.name = "toy";
  o.loop.steps = 2;
  try {
    train::train_expert(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::exists);
    CHECK_THAT(e.hint(), Catch::Contains("--force"));
  }
  o.out_dir = dir / "new";
  write_text(dir / "long.jsonl",
             "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\", \"target\": \"the quick brown fox jumps over it\"}\n");
  o.data = dir / "long.jsonl";
  o.tokenize.max_target_len = 4;
  CHECK_THROWS_WITH(train::train_expert(o), Catch::Contains("long.jsonl: example 2: field 'target'") &&
                                                Catch::Contains("longer than --max-target-len 4"));
  o.tokenize.max_target_len = 128;
  write_text(dir / "empty.jsonl", "\n");
  o.data = dir / "empty.jsonl";
  CHECK_THROWS_WITH(train::train_expert(o), Catch::Contains("empty.jsonl"));
  o.data = f.data;
  o.name = "Bad Name";
  CHECK_THROWS_WITH(train::train_expert(o), Catch::Contains("not a valid expert name"));
  CHECK_FALSE(fs::exists(dir / "new"));
}
