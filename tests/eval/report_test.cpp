#include <torch/torch.h>
#include <catch2/catch.hpp>

#include "eval/report.h"
#include "support/test_support.h"

using namespace gaggle;

namespace {

// Two benchmarks (t0: rte, wic; bbh: dates), PHATGOOSE and two single experts.
eval::Report sample_report() {
  eval::Report r;
  r.methods = {{"PHATGOOSE", "router", true, {}},
               {"Single a@1.0.0", "single", false, {}},
               {"Single b@1.0.0", "single", false, {}},
               {"Base", "base", true, {}}};
  auto add = [&](const std::string& m, const std::string& b, const std::string& t, double v, std::int64_t n) {
    r.rows.push_back({m, t, b, "accuracy", v, n});
  };
  add("PHATGOOSE", "t0", "rte", 0.6, 10);
  add("PHATGOOSE", "t0", "wic", 0.5, 20);
  add("PHATGOOSE", "bbh", "dates", 0.3, 5);
  add("Single a@1.0.0", "t0", "rte", 0.7, 10);
  add("Single a@1.0.0", "t0", "wic", 0.4, 20);
  add("Single a@1.0.0", "bbh", "dates", 0.2, 5);
  add("Single b@1.0.0", "t0", "rte", 0.5, 10);
  add("Single b@1.0.0", "t0", "wic", 0.55, 20);
  add("Single b@1.0.0", "bbh", "dates", 0.4, 5);
  add("Base", "t0", "rte", 0.5, 10);
  add("Base", "t0", "wic", 0.5, 20);
  add("Base", "bbh", "dates", 0.25, 5);
  r.meta["seed"] = 3;
  return r;
}

double value_of(const eval::Report& r, const std::string& m, const std::string& t) {
  for (const auto& row : r.rows)
    if (row.method == m && row.task == t) return row.value;
  return -1;
}

}  // namespace

TEST_CASE("Oracle takes the best single expert per task; Best individual the best on average", "[eval][report]") {
  auto r = sample_report();
  eval::derive_oracle_and_best(r);
  CHECK(value_of(r, "Oracle", "rte") == Approx(0.7));
  CHECK(value_of(r, "Oracle", "wic") == Approx(0.55));
  CHECK(value_of(r, "Oracle", "dates") == Approx(0.4));
  // a: mean(mean(0.7, 0.4), 0.2) = 0.375; b: mean(mean(0.5, 0.55), 0.4) = 0.4625 -> b.
  CHECK(value_of(r, "Best individual", "rte") == Approx(0.5));
  CHECK(value_of(r, "Best individual", "dates") == Approx(0.4));
  auto oracle = eval::oracle_experts(r);
  CHECK(oracle.at("t0/rte") == "Single a@1.0.0");
  CHECK(oracle.at("bbh/dates") == "Single b@1.0.0");
  bool found = false;
  for (const auto& m : r.methods)
    if (m.name == "Best individual") {
      found = true;
      CHECK_FALSE(m.zero_shot);
      CHECK_THAT(m.note, Catch::Contains("b@1.0.0"));
    }
  CHECK(found);
  const auto rows_before = r.rows.size();
  eval::derive_oracle_and_best(r);  // idempotent
  CHECK(r.rows.size() == rows_before);
}

TEST_CASE("benchmark means are unweighted over tasks", "[eval][report]") {
  auto r = sample_report();
  auto means = eval::benchmark_means(r);
  REQUIRE(means.size() == 8);
  CHECK(means[0].method == "PHATGOOSE");
  CHECK(means[0].benchmark == "t0");
  CHECK(means[0].value == Approx(0.55));  // (0.6 + 0.5) / 2, not weighted by n
  CHECK(means[0].tasks == 2);
  CHECK(means[1].benchmark == "bbh");
  CHECK(means[1].value == Approx(0.3));
}

TEST_CASE("OUT.json has exactly the rows, means and meta the issue names", "[eval][report]") {
  auto r = sample_report();
  eval::derive_oracle_and_best(r);
  auto j = eval::report_json(r);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"rows", "means", "meta"});
  std::vector<std::string> row_keys;
  for (auto it = j["rows"][0].begin(); it != j["rows"][0].end(); ++it) row_keys.push_back(it.key());
  CHECK(row_keys == std::vector<std::string>{"method", "task", "benchmark", "metric", "value", "n"});
  for (const auto& row : j["rows"]) {
    CHECK(row["value"].get<double>() >= 0.0);
    CHECK(row["value"].get<double>() <= 1.0);
    CHECK(row["n"].get<std::int64_t>() > 0);
  }
  CHECK(j["meta"]["seed"] == 3);
  CHECK(j["meta"]["methods"].size() == 6);
  CHECK(j["means"][0]["method"] == "PHATGOOSE");
}

TEST_CASE("the Markdown table has the paper's layout; the CSV every row", "[eval][report]") {
  auto r = sample_report();
  eval::derive_oracle_and_best(r);
  const std::string md = eval::report_markdown(r);
  INFO(md);
  CHECK(md.rfind("| Method | rte | wic | **t0** | dates | **bbh** |\n", 0) == 0);
  // Paper order: Base, Oracle, Best individual, PHATGOOSE, then single experts.
  const auto base = md.find("| Base |"), oracle = md.find("| Oracle † |"), best = md.find("| Best individual † |"),
             phat = md.find("| PHATGOOSE |"), single = md.find("| Single a@1.0.0 † |");
  REQUIRE(base != std::string::npos);
  REQUIRE(oracle != std::string::npos);
  REQUIRE(best != std::string::npos);
  REQUIRE(phat != std::string::npos);
  REQUIRE(single != std::string::npos);
  CHECK(base < oracle);
  CHECK(oracle < best);
  CHECK(best < phat);
  CHECK(phat < single);
  CHECK_THAT(md, Catch::Contains("| PHATGOOSE | 60.0 | 50.0 | **55.0** | 30.0 | **30.0** |"));
  CHECK_THAT(md, Catch::Contains("not zero-shot"));
  // With many single experts, their rows stay in the JSON.
  const std::string short_md = eval::report_markdown(r, 1);
  CHECK(short_md.find("| Single a@1.0.0") == std::string::npos);
  CHECK_THAT(short_md, Catch::Contains("2 single-expert rows"));

  const std::string csv = eval::report_csv(r);
  CHECK(csv.rfind("method,task,benchmark,metric,value,n\n", 0) == 0);
  CHECK_THAT(csv, Catch::Contains("PHATGOOSE,rte,t0,accuracy,0.600000,10\n"));
  CHECK_THAT(csv, Catch::Contains("PHATGOOSE,mean,t0,mean,0.550000,2\n"));

  test::TempDir tmp;
  auto paths = eval::write_report(r, tmp / "out" / "report.json");
  REQUIRE(paths.size() == 3);
  CHECK(test::read_text(tmp / "out" / "report.md") == md);
  CHECK(test::read_text(tmp / "out" / "report.csv") == csv);
  CHECK(test::read_text(tmp / "out" / "report.json") == eval::report_json(r).dump(2) + "\n");
}
