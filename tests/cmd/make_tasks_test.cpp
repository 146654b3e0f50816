// gaggle debug make-tasks: the synthetic suite from the command line.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

TEST_CASE("debug make-tasks writes the suite and the same seed gives the same bytes", "[cmd][make_tasks]") {
  TempDir dir;
  std::vector<std::string> args = {"debug", "make-tasks", "--seed", "3", "--train", "30", "--validation", "5", "--eval", "12"};
  auto a = args, b = args;
  a.insert(a.end(), {"--out", (dir / "a").string()});
  b.insert(b.end(), {"--out", (dir / "b").string()});
  auto r = run_gaggle(a);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("12 held-in tasks"));
  CHECK_THAT(r.err, Catch::Contains("held-out reverse_translate"));
  REQUIRE(run_gaggle(b).exit_code == 0);
  CHECK(read_text(dir / "a" / "compose" / "count_filter.jsonl") == read_text(dir / "b" / "compose" / "count_filter.jsonl"));
  CHECK(read_text(dir / "a" / "heldout" / "plural_antonym.jsonl") == read_text(dir / "b" / "heldout" / "plural_antonym.jsonl"));
  CHECK(read_text(dir / "a" / "train" / "translate.jsonl") == read_text(dir / "b" / "train" / "translate.jsonl"));
  auto suite = nlohmann::json::parse(read_text(dir / "a" / "suite.json"));
  CHECK(suite["held_in"].size() == 12);
  CHECK(suite["held_out"].size() == 21);  // 9 transfer + 4 mixed (heldout/), 8 compose (compose/)
  CHECK(suite["counts"]["train"] == 30);

  // An existing directory is refused (exit 1) unless --force.
  r = run_gaggle(a);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("already exists"));
  CHECK_THAT(r.err, Catch::Contains("--force"));
  a.push_back("--force");
  CHECK(run_gaggle(a).exit_code == 0);
}

TEST_CASE("debug make-tasks --list describes the tasks and --out is required otherwise", "[cmd][make_tasks]") {
  auto r = run_gaggle({"debug", "make-tasks", "--list"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("negated_sentiment"));
  CHECK_THAT(r.out, Catch::Contains("[antonym + sentiment]"));
  r = run_gaggle({"debug", "make-tasks"});
  CHECK(r.exit_code == 2);
  r = run_gaggle({"debug", "make-tasks", "--out", "x", "--train", "0"});
  CHECK(r.exit_code == 2);
}
