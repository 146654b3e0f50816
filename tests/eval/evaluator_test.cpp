// LibTorch pulls in glog, whose CHECK() aborts instead of reporting: include torch first,
// drop glog's macro, then Catch.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <set>

#include "eval/evaluator.h"
#include "eval/fixtures.h"
#include "io/error.h"
#include "model/scoring.h"
#include "tasks/task_data.h"
#include "text/tokenizer.h"

using namespace gaggle;
using gaggle::test::TempDir;

namespace {

std::vector<std::int64_t> decode_row(const torch::Tensor& out, std::int64_t b) {
  auto row = out[b].slice(0, 1).contiguous();
  return {row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel()};
}

}  // namespace

TEST_CASE("rank classification is scored by length-normalised NLL, generation by exact match", "[eval][evaluator]") {
  TempDir tmp;
  test::make_tiny_base(tmp / "base");
  auto model = model::load_t5(tmp / "base");
  auto tok = text::Tokenizer::load(tmp / "base");

  // Classification: 6 examples, 3 choices each. Labels are the model's own prediction for
  // the first 3 and another choice for the last 3, so accuracy must be exactly 0.5.
  const std::vector<std::string> inputs = {"Is the sky blue?", "Premise: it rains. Hypothesis: it is wet.",
                                           "The movie was great.", "What is two plus two?",
                                           "Paris is in France.", "The cat sat on the mat."};
  const std::vector<std::string> choices = {"yes", "no", "maybe"};
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::vector<std::vector<std::int64_t>>> cids;
  for (const auto& in : inputs) {
    ids.push_back(tok.encode(in));
    cids.push_back({tok.encode("yes"), tok.encode("no"), tok.encode("maybe")});
  }
  model::RankOptions rank;
  rank.max_rows = 8 * 3;
  auto pred = model::rank_predictions(model::rank_classification_nll(*model, ids, cids, rank));
  std::vector<tasks::Example> cls;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    tasks::Example ex;
    ex.input = inputs[i];
    ex.choices = choices;
    ex.label = i < 3 ? static_cast<int>(pred[i]) : static_cast<int>((pred[i] + 1) % 3);
    ex.target = choices[static_cast<std::size_t>(ex.label)];
    cls.push_back(ex);
  }
  std::filesystem::create_directories(tmp / "bench");
  tasks::write_task_file(tmp / "bench" / "cls.jsonl", cls);

  // Generation: the target of the first example is the model's own greedy output.
  std::vector<std::vector<std::int64_t>> gen_ids = {tok.encode("Translate: hello"), tok.encode("Say something")};
  auto batch = model::make_batch(gen_ids, {}, 0);
  auto out = model->greedy(batch.input_ids, batch.attention_mask, 12, true);
  std::string own = tok.decode(decode_row(out, 0));
  while (!own.empty() && own.back() == ' ') own.pop_back();
  while (!own.empty() && own.front() == ' ') own.erase(own.begin());
  REQUIRE_FALSE(own.empty());
  std::vector<tasks::Example> gen(2);
  gen[0].input = "Translate: hello";
  gen[0].target = own;
  gen[1].input = "Say something";
  gen[1].target = "certainly not what a random model says";
  tasks::write_task_file(tmp / "bench" / "gen.jsonl", gen);

  eval::EvalOptions opt;
  opt.batch_size = 8;
  opt.max_new_tokens = 12;
  std::vector<eval::EvalProgress> seen;
  opt.progress = [&](const eval::EvalProgress& p) { seen.push_back(p); };
  auto task_list = eval::load_tasks(tasks::enumerate_task_sets({tmp / "bench"}), opt);
  REQUIRE(task_list.size() == 2);
  auto base = eval::make_base_method();
  eval::Report report;
  eval::evaluate(*model, tok, task_list, {base.get()}, opt, report);

  REQUIRE(report.rows.size() == 2);
  CHECK(report.rows[0].task == "cls");
  CHECK(report.rows[0].benchmark == "bench");
  CHECK(report.rows[0].metric == "accuracy");
  CHECK(report.rows[0].n == 6);
  CHECK(report.rows[0].value == Approx(0.5));
  CHECK(report.rows[1].task == "gen");
  CHECK(report.rows[1].metric == "exact_match");
  CHECK(report.rows[1].n == 2);
  CHECK(report.rows[1].value == Approx(0.5));
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().done == 8);
  CHECK(seen.back().total == 8);

  // The same evaluation again gives the same numbers; the limit scores fewer examples.
  eval::Report again;
  eval::evaluate(*model, tok, task_list, {base.get()}, opt, again);
  CHECK(eval::report_json(again).dump() == eval::report_json(report).dump());
  opt.limit = 4;
  auto limited = eval::load_tasks(tasks::enumerate_task_sets({tmp / "bench" / "cls.jsonl"}), opt);
  REQUIRE(limited.size() == 1);
  CHECK(limited[0].examples.size() == 4);
  CHECK(limited[0].available == 6);
}

TEST_CASE("--limit keeps a seeded sample in file order", "[eval][evaluator]") {
  auto a = eval::sample_indices(100, 10, 7, "bench/task");
  auto b = eval::sample_indices(100, 10, 7, "bench/task");
  auto c = eval::sample_indices(100, 10, 8, "bench/task");
  auto d = eval::sample_indices(100, 10, 7, "bench/other");
  CHECK(a == b);
  CHECK(a.size() == 10);
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<std::size_t>(a.begin(), a.end()).size() == 10);
  CHECK(a.back() < 100);
  CHECK(a != c);
  CHECK(a != d);
  CHECK(eval::sample_indices(5, 0, 1, "x") == std::vector<std::size_t>{0, 1, 2, 3, 4});
  CHECK(eval::sample_indices(5, 9, 1, "x").size() == 5);
}

TEST_CASE("a task given twice is a usage error", "[eval][evaluator]") {
  TempDir tmp;
  std::filesystem::create_directories(tmp / "b");
  tasks::Example ex;
  ex.input = "x";
  ex.target = "y";
  tasks::write_task_file(tmp / "b" / "t.jsonl", {ex});
  eval::EvalOptions opt;
  tasks::TaskSet set = tasks::enumerate_tasks(tmp / "b");
  try {
    eval::load_tasks({set, set}, opt);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::usage);
    CHECK_THAT(e.what(), Catch::Contains("b/t"));
  }
}
