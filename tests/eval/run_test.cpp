#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <set>

#include "bundle/keys.h"
#include "bundle/sign.h"
#include "eval/fixtures.h"
#include "eval/routing_plot.h"
#include "eval/run.h"
#include "io/error.h"
#include "route/assembly.h"
#include "tasks/task_data.h"

using namespace gaggle;
using gaggle::test::TempDir;

namespace {

void write_review_tasks(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::vector<tasks::Example> cls, gen;
  const char* texts[] = {"The film was wonderful.", "I hated every minute.", "A quiet, moving story.",
                         "Dull and far too long.", "An instant classic.", "Nothing works here."};
  for (int i = 0; i < 6; ++i) {
    tasks::Example ex;
    ex.input = std::string("Review: ") + texts[i] + " Is it positive?";
    ex.choices = {"yes", "no"};
    ex.label = i % 2;
    ex.target = ex.choices[static_cast<std::size_t>(ex.label)];
    cls.push_back(ex);
    tasks::Example g;
    g.input = std::string("Repeat: ") + texts[i];
    g.target = texts[i];
    gen.push_back(g);
  }
  tasks::write_task_file(dir / "sentiment.jsonl", cls);
  tasks::write_task_file(dir / "repeat.jsonl", gen);
}

}  // namespace

TEST_CASE("run_eval evaluates every router, single expert and derived row on the same examples", "[eval][run]") {
  TempDir tmp;
  auto model = test::make_tiny_base(tmp / "base");
  const std::string fp = model::base_fingerprint(tmp / "base");
  for (int i = 0; i < 3; ++i) {
    test::TinyExpertOptions o;
    o.name = std::string("ex") + static_cast<char>('a' + i);
    o.seed = 20 + i;
    o.fingerprint = fp;
    test::make_tiny_expert(tmp / "pool" / o.name, *model, o);
  }
  write_review_tasks(tmp / "heldout");

  eval::RunOptions o;
  o.base_dir = tmp / "base";
  o.tasks = {tmp / "heldout"};
  o.pool_dir = tmp / "pool";
  o.routers = {"phatgoose", "arrow", "average-activation", "retrieval", "merged"};
  o.single_experts = true;
  o.with_base = true;
  o.multitask_dir = tmp / "pool" / "exa";
  o.eval.batch_size = 4;
  o.eval.limit = 5;
  o.eval.seed = 11;
  o.eval.max_new_tokens = 6;
  o.gaggle_version = "test";
  auto report = eval::run_eval(o);

  std::vector<std::string> names;
  for (const auto& m : report.methods) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"Base", "Multitask", "PHATGOOSE", "Arrow", "Average activation", "Retrieval",
                                          "Merged", "Single exa@1.0.0", "Single exb@1.0.0", "Single exc@1.0.0",
                                          "Oracle", "Best individual"});
  CHECK(report.rows.size() == names.size() * 2);
  for (const auto& r : report.rows) {
    CHECK(r.n == 5);
    CHECK(r.benchmark == "heldout");
    CHECK(r.value >= 0.0);
    CHECK(r.value <= 1.0);
    CHECK(r.metric == (r.task == "repeat" ? "exact_match" : "accuracy"));
  }
  // Oracle is at least every single expert on every task.
  for (const auto& r : report.rows) {
    if (r.method.rfind("Single ", 0) != 0) continue;
    for (const auto& o2 : report.rows)
      if (o2.method == "Oracle" && o2.task == r.task) CHECK(o2.value >= r.value);
  }
  // Multitask (= expert a alone) scores what Single exa scores.
  for (const auto& r : report.rows)
    if (r.method == "Multitask")
      for (const auto& s : report.rows)
        if (s.method == "Single exa@1.0.0" && s.task == r.task) CHECK(s.value == r.value);
  // Routing traces: PHATGOOSE, Arrow, Average activation per task.
  REQUIRE(report.routing.size() == 3 * 2);
  for (const auto& tr : report.routing) {
    auto fig = eval::routing_figure(tr, "");
    CHECK(fig.layers.size() == 4);
    for (const auto& l : fig.layers) CHECK(l.slots > 0);
  }
  CHECK(report.meta["base"]["fingerprint"] == fp);
  CHECK(report.meta["experts"].size() == 4);  // multitask + 3 pool experts
  CHECK(report.meta["seed"] == 11);
  CHECK(report.meta["flags"]["limit"] == 5);

  // The same run again: byte-identical JSON.
  auto again = eval::run_eval(o);
  CHECK(eval::report_json(again).dump() == eval::report_json(report).dump());
}

TEST_CASE("run_eval rejects inconsistent requests before loading anything", "[eval][run]") {
  eval::RunOptions o;
  o.base_dir = "/nonexistent";
  o.tasks = {"/nonexistent.jsonl"};
  o.routers = {"phatgoose"};
  try {
    eval::run_eval(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::usage);
    CHECK_THAT(e.what(), Catch::Contains("--pool"));
  }
  o.pool_dir = "/nonexistent-pool";
  o.routers = {"smear"};
  CHECK_THROWS_AS(eval::run_eval(o), Error);
  o.routers = {"no-such-router"};
  try {
    eval::run_eval(o);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::usage);
    CHECK_THAT(e.what(), Catch::Contains("no-such-router"));
  }
}

TEST_CASE("run_eval scores a routed model from gaggle assemble like the same router built in memory", "[eval][run]") {
  TempDir tmp;
  auto model = test::make_tiny_base(tmp / "base");
  const std::string fp = model::base_fingerprint(tmp / "base");
  auto pub = bundle::generate_ed25519_keypair(tmp / "key", "alice@example.com");
  const std::string openssh = pub.to_openssh();
  test::write_text(tmp / "trust",
                   "alice@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
  route::AssembleOptions a;
  a.base_dir = tmp / "base";
  a.trust_file = tmp / "trust";
  a.out_dir = tmp / "routed";
  a.router = route::RouterKind::phatgoose;
  for (int i = 0; i < 3; ++i) {
    test::TinyExpertOptions o;
    o.name = std::string("ex") + static_cast<char>('a' + i);
    o.seed = 30 + i;
    o.fingerprint = fp;
    test::make_tiny_expert(tmp / "pool" / o.name, *model, o);
    bundle::sign_bundle(tmp / "pool" / o.name, bundle::SignOptions{tmp / "key"});
    a.experts.push_back(test::bundle_source(o.name, tmp / "pool" / o.name));
  }
  route::assemble(a);
  write_review_tasks(tmp / "heldout");

  eval::RunOptions o;
  o.model_dirs = {tmp / "routed"};  // the base comes from assembly.json
  o.tasks = {tmp / "heldout" / "sentiment.jsonl"};
  o.eval.max_new_tokens = 6;
  auto routed = eval::run_eval(o);
  REQUIRE(routed.rows.size() == 1);
  CHECK(routed.rows[0].method == "PHATGOOSE");
  CHECK(routed.rows[0].n == 6);
  REQUIRE(routed.routing.size() == 1);
  CHECK(routed.routing[0].experts == std::vector<std::string>{"exa@1.0.0", "exb@1.0.0", "exc@1.0.0"});
  CHECK(routed.meta["models"][0]["router"] == "phatgoose");
  CHECK(routed.meta["models"][0]["experts"][0]["signer"] == "alice@example.com");

  // Both in one run: the routed model is told apart by its directory's name.
  eval::RunOptions m;
  m.base_dir = tmp / "base";
  m.model_dirs = {tmp / "routed"};
  m.pool_dir = tmp / "pool";
  m.routers = {"phatgoose"};
  m.tasks = o.tasks;
  auto both = eval::run_eval(m);
  REQUIRE(both.rows.size() == 2);
  CHECK(both.rows[0].method == "PHATGOOSE (routed)");
  CHECK(both.rows[1].method == "PHATGOOSE");
  CHECK(both.meta["models"][0]["method"] == "PHATGOOSE (routed)");
  CHECK(both.rows[0].value == routed.rows[0].value);
  CHECK(both.rows[1].value == routed.rows[0].value);
  // The same tokens go to the same experts.
  REQUIRE(both.routing.size() == 2);
  std::int64_t differ = 0, total = 0;
  for (const auto& [module, counts] : both.routing[1].counts) {
    const auto& other = both.routing[0].counts.at(module);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      differ += std::abs(counts[i] - other[i]);
      total += counts[i];
    }
  }
  CHECK(total > 0);
  CHECK(differ == 0);
}
