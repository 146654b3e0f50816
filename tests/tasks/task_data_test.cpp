#include "tasks/task_data.h"

#include <catch2/catch.hpp>

#include "io/error.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {
std::string error_of(const fs::path& p) {
  try {
    tasks::read_task_file(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("task files round-trip training, classification and generation rows", "[tasks][task_data]") {
  test::TempDir dir;
  std::vector<tasks::Example> rows = {
      {"Translate: cat", "chat", {}, -1},
      {"Is it positive? great film", "yes", {"no", "yes"}, 1},
      {"unicode \xC3\xA9 \"quoted\"\nnewline", "x\ty", {}, -1},
  };
  tasks::write_task_file(dir / "t.jsonl", rows);
  auto back = tasks::read_task_file(dir / "t.jsonl");
  CHECK(back == rows);
  CHECK_FALSE(back[0].is_classification());
  CHECK(back[1].is_classification());
  // One object per line, input first.
  std::string text = test::read_text(dir / "t.jsonl");
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  CHECK(text.rfind("{\"input\":\"Translate: cat\",\"target\":\"chat\"}\n", 0) == 0);
}

TEST_CASE("choices+label fill in the target, blank lines and CRLF are fine", "[tasks][task_data]") {
  test::TempDir dir;
  test::write_text(dir / "t.jsonl", "\n{\"input\": \"q\", \"choices\": [\"a\", \"b\"], \"label\": 1}\r\n\n  \n"
                                    "{\"input\": \"g\", \"target\": \"out\"}");
  auto rows = tasks::read_task_file(dir / "t.jsonl");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].target == "b");
  CHECK(rows[0].label == 1);
  CHECK(rows[1].target == "out");
}

TEST_CASE("bad lines name the file, the line and the field", "[tasks][task_data]") {
  test::TempDir dir;
  auto check = [&](const std::string& content, const std::string& field, const std::string& what) {
    test::write_text(dir / "bad.jsonl", content);
    std::string msg = error_of(dir / "bad.jsonl");
    INFO(msg);
    CHECK_THAT(msg, Catch::Contains((dir / "bad.jsonl").string() + ":2"));
    if (!field.empty()) CHECK_THAT(msg, Catch::Contains("field '" + field + "'"));
    CHECK_THAT(msg, Catch::Contains(what));
  };
  std::string ok = "{\"input\": \"a\", \"target\": \"b\"}\n";
  check(ok + "{\"input\": \"a\", \"target\": \"b\"", "", "invalid JSON");
  // A number beyond a double's range: an error, not an exception that ends the process
  // (found by fuzz/run.sh pool_tasks).
  check(ok + "{\"input\": \"a\", \"target\": \"b\", \"n\": 945e1945}", "", "invalid JSON");
  check(ok + "[1, 2]", "", "JSON object");
  check(ok + "{\"input\": \"a\", \"target\": \"b\", \"deep\": " + std::string(100000, '[') + std::string(100000, ']') +
            "}",
        "", "nested deeper than 64 levels");
  check(ok + "{\"target\": \"b\"}", "input", "missing");
  check(ok + "{\"input\": 3, \"target\": \"b\"}", "input", "must be a string");
  check(ok + "{\"input\": \"a\"}", "target", "missing");
  check(ok + "{\"input\": \"a\", \"target\": 1}", "target", "must be a string");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\", \"y\"]}", "label", "missing");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\", \"y\"], \"label\": 2}", "label", "out of range");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\", \"y\"], \"label\": \"1\"}", "label", "must be an integer");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\", 5], \"label\": 0}", "choices", "element 1");
  check(ok + "{\"input\": \"a\", \"choices\": [], \"label\": 0}", "choices", "empty");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\"], \"label\": 0}", "choices", "at least 2");
  check(ok + "{\"input\": \"a\", \"choices\": [\"x\", \"y\"], \"label\": 0, \"target\": \"y\"}", "target", "not choices[label]");
  check(ok + "{\"input\": \"a\", \"target\": \"b\", \"label\": 0}", "label", "needs 'choices'");
}

TEST_CASE("empty and missing task files are errors", "[tasks][task_data]") {
  test::TempDir dir;
  test::write_text(dir / "empty.jsonl", "");
  CHECK_THAT(error_of(dir / "empty.jsonl"), Catch::Contains("no examples"));
  test::write_text(dir / "blank.jsonl", "\n\n  \n");
  CHECK_THAT(error_of(dir / "blank.jsonl"), Catch::Contains("blank.jsonl"));
  CHECK_THAT(error_of(dir / "absent.jsonl"), Catch::Contains("absent.jsonl"));
  CHECK_THROWS_AS(tasks::write_task_file(dir / "w.jsonl", {}), Error);
  CHECK_FALSE(fs::exists(dir / "w.jsonl"));
  // The writer validates too and leaves no file behind.
  CHECK_THROWS_WITH(tasks::write_task_file(dir / "w.jsonl", {{"a", "", {"x", "y"}, 5}}), Catch::Contains("example 1"));
  CHECK_FALSE(fs::exists(dir / "w.jsonl"));
}

TEST_CASE("a benchmark is a directory of task files", "[tasks][task_data]") {
  test::TempDir dir;
  fs::create_directories(dir / "superglue");
  fs::create_directories(dir / "bbh");
  std::vector<tasks::Example> one = {{"i", "t", {}, -1}};
  tasks::write_task_file(dir / "superglue" / "rte.jsonl", one);
  tasks::write_task_file(dir / "superglue" / "cb.jsonl", one);
  test::write_text(dir / "superglue" / "README.md", "not a task");
  tasks::write_task_file(dir / "bbh" / "navigate.jsonl", one);

  auto set = tasks::enumerate_tasks(dir / "superglue");
  CHECK(set.benchmark == "superglue");
  REQUIRE(set.tasks.size() == 2);
  CHECK(set.tasks[0].first == "cb");
  CHECK(set.tasks[1].first == "rte");

  auto file = tasks::enumerate_tasks(dir / "bbh" / "navigate.jsonl");
  CHECK(file.benchmark == "bbh");
  CHECK(file.tasks.at(0).first == "navigate");

  auto sets = tasks::enumerate_task_sets({dir / "bbh", dir / "superglue" / "rte.jsonl", dir / "superglue" / "cb.jsonl"});
  REQUIRE(sets.size() == 2);
  CHECK(sets[0].benchmark == "bbh");
  CHECK(sets[1].tasks.size() == 2);

  fs::create_directories(dir / "nothing");
  CHECK_THROWS_WITH(tasks::enumerate_tasks(dir / "nothing"), Catch::Contains("no task files"));
  CHECK_THROWS_WITH(tasks::enumerate_tasks(dir / "missing"), Catch::Contains("does not exist"));
}
