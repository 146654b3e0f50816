// The synthetic task suite: deterministic, disjoint splits, several templates, and
// held-out tasks that compose two held-in skills (with each single skill's answer among
// the wrong choices).
#include "tasks/synthetic.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "support/test_support.h"
#include "tasks/task_data.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& w : v) out += (out.empty() ? "" : " ") + w;
  return out;
}

const tasks::SuiteTaskInfo& info(const std::string& name) {
  for (const auto& t : tasks::suite_tasks())
    if (t.name == name) return t;
  FAIL("no task " << name);
  throw;
}

// The {list} of an input, recovered through the task's templates.
std::string list_of(const std::string& task, const std::string& input) {
  for (const std::string& t : info(task).templates) {
    auto at = t.find("{list}");
    if (at == std::string::npos) continue;
    std::string pre = t.substr(0, at), post = t.substr(at + 6);
    if (post.find('{') != std::string::npos || pre.find('{') != std::string::npos) continue;
    if (input.size() >= pre.size() + post.size() && input.compare(0, pre.size(), pre) == 0 &&
        input.compare(input.size() - post.size(), post.size(), post) == 0)
      return input.substr(pre.size(), input.size() - pre.size() - post.size());
  }
  return "<no template matched>";
}

int number_value(const std::string& w) {
  static const std::vector<std::string> n = {"zero", "one", "two", "three", "four", "five", "six", "seven",
                                             "eight", "nine", "ten", "eleven", "twelve"};
  auto it = std::find(n.begin(), n.end(), w);
  return it == n.end() ? -1 : static_cast<int>(it - n.begin());
}

}  // namespace

TEST_CASE("the suite has 12 held-in tasks and held-out tasks of three kinds, each naming the held-in skills it needs",
          "[tasks][synthetic]") {
  std::set<std::string> held_in;
  std::map<std::string, int> kinds;
  for (const auto& t : tasks::suite_tasks()) {
    CHECK(t.templates.size() >= 3);
    if (!t.held_out) {
      held_in.insert(t.name);
      CHECK(t.kind == "skill");
      CHECK(t.benchmark == "heldin");
    }
  }
  CHECK(held_in.size() >= 12);
  std::set<std::string> composed, transferred;
  for (const auto& t : tasks::suite_tasks()) {
    if (!t.held_out) continue;
    INFO(t.name);
    ++kinds[t.kind];
    CHECK(held_in.count(t.name) == 0);
    for (const auto& c : t.composes) CHECK(held_in.count(c) == 1);
    if (t.kind == "transfer") {
      REQUIRE(t.composes.size() == 1);
      CHECK(t.benchmark == "heldout");
      transferred.insert(t.composes[0]);
      // New wordings: no template of the held-in task is reused.
      for (const auto& h : tasks::suite_tasks())
        if (h.name == t.composes[0])
          for (const auto& tpl : t.templates) CHECK(std::find(h.templates.begin(), h.templates.end(), tpl) == h.templates.end());
    } else {
      REQUIRE(t.composes.size() == 2);
      CHECK(t.composes[0] != t.composes[1]);
      CHECK(t.benchmark == (t.kind == "mixed" ? "heldout" : "compose"));
      if (t.kind == "compose")
        for (const auto& c : t.composes) composed.insert(c);
    }
  }
  CHECK(kinds["transfer"] >= 6);
  CHECK(kinds["mixed"] >= 3);
  CHECK(kinds["compose"] >= 6);
  CHECK(composed.size() >= 8);     // the compositions spread over many experts
  CHECK(transferred.size() >= 6);  // and so do the transfers
}

TEST_CASE("transfer and mixed instances come from the held-in evaluation buckets, never from training",
          "[tasks][synthetic]") {
  // A transfer task's answers are answers of its held-in task; none of its instances is in
  // the held-in training split.
  auto train = tasks::generate_task("plural", "train", 800, 4);
  std::set<std::string> trained;
  for (const auto& e : train) trained.insert(e.target);
  auto reworded = tasks::generate_task("plural_reworded", "eval", 100, 4);
  int seen = 0;
  for (const auto& e : reworded) seen += trained.count(e.target) ? 1 : 0;
  // The target is a function of the key's word list, so no trained target reappears.
  CHECK(seen == 0);
  // Mixed: the answer is the two segments' answers side by side, and each wrong choice is
  // wrong in one segment or both.
  auto mixed = tasks::generate_task("plural_antonym", "eval", 50, 4);
  for (const auto& e : mixed) {
    INFO(e.input);
    REQUIRE(e.choices.size() == 4);
    const std::string& answer = e.choices[static_cast<std::size_t>(e.label)];
    CHECK(answer == e.target);
    for (const auto& c : e.choices) CHECK(std::count(c.begin(), c.end(), ' ') >= 1);
  }
}

TEST_CASE("generation is deterministic in the seed, and templates vary", "[tasks][synthetic]") {
  auto a = tasks::generate_task("reverse", "train", 60, 7);
  auto b = tasks::generate_task("reverse", "train", 60, 7);
  auto c = tasks::generate_task("reverse", "train", 60, 8);
  CHECK(a == b);
  CHECK(a != c);
  for (const auto& t : tasks::suite_tasks()) {
    INFO(t.name);
    auto ex = tasks::generate_task(t.name, "eval", 90, 1);
    REQUIRE(ex.size() == 90);
    // Every template is used.
    std::set<std::string> used;
    for (const auto& e : ex)
      for (const auto& tpl : t.templates) {
        auto head = tpl.substr(0, tpl.find('{'));
        auto tail = tpl.substr(tpl.rfind('}') + 1);
        if (!head.empty() ? e.input.rfind(head, 0) == 0 : e.input.size() >= tail.size() &&
                                                              e.input.compare(e.input.size() - tail.size(), tail.size(), tail) == 0)
          used.insert(tpl);
      }
    CHECK(used.size() == t.templates.size());
    for (const auto& e : ex) {
      REQUIRE(e.is_classification());
      CHECK(e.choices.size() >= 2);
      CHECK(e.target == e.choices.at(static_cast<std::size_t>(e.label)));
      CHECK(std::set<std::string>(e.choices.begin(), e.choices.end()).size() == e.choices.size());
    }
  }
  CHECK_THROWS_AS(tasks::generate_task("reverse_translate", "train", 5, 0), Error);
  CHECK_THROWS_AS(tasks::generate_task("no_such_task", "eval", 5, 0), Error);
}

TEST_CASE("held-in answers are right and evaluation never repeats a training instance", "[tasks][synthetic]") {
  for (const std::string task : {"reverse", "sort", "count"}) {
    INFO(task);
    auto train = tasks::generate_task(task, "train", 400, 3);
    auto eval = tasks::generate_task(task, "eval", 100, 3);
    std::set<std::string> train_lists;
    for (const auto& e : train) {
      CHECK_FALSE(e.is_classification());
      train_lists.insert(list_of(task, e.input));
    }
    for (const auto& e : eval) {
      auto list = list_of(task, e.input);
      CHECK(train_lists.count(list) == 0);
      auto w = words(list);
      if (task == "reverse") {
        std::reverse(w.begin(), w.end());
        CHECK(e.target == join(w));
      } else if (task == "sort") {
        std::sort(w.begin(), w.end());
        CHECK(e.target == join(w));
      } else {
        CHECK(number_value(e.target) == static_cast<int>(w.size()));
      }
    }
  }
}

TEST_CASE("held-out choices hold what each single skill would answer", "[tasks][synthetic]") {
  auto has = [](const tasks::Example& e, const std::string& s) {
    return std::find(e.choices.begin(), e.choices.end(), s) != e.choices.end();
  };
  for (const auto& e : tasks::generate_task("reverse_translate", "eval", 50, 0)) {
    auto list = words(list_of("reverse_translate", e.input));
    auto t = words(e.target);
    REQUIRE(t.size() == list.size());
    std::reverse(t.begin(), t.end());
    CHECK(has(e, join(t)));  // translated, not reversed
    std::reverse(list.begin(), list.end());
    CHECK(has(e, join(list)));  // reversed, not translated
  }
  for (const auto& e : tasks::generate_task("antonym_reverse", "eval", 50, 0)) {
    auto t = words(e.target);
    std::reverse(t.begin(), t.end());
    CHECK(has(e, join(t)));  // opposites, not reversed
  }
  for (const auto& e : tasks::generate_task("sort_plural", "eval", 50, 0)) {
    auto list = words(list_of("sort_plural", e.input));
    std::sort(list.begin(), list.end());
    CHECK(has(e, join(list)));  // sorted, not plural
  }
  for (const auto& e : tasks::generate_task("count_next", "eval", 50, 0)) {
    auto n = words(list_of("count_next", e.input)).size();
    CHECK(number_value(e.target) == static_cast<int>(n) + 1);
    CHECK(has(e, std::vector<std::string>{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"}[n]));
  }
  // negated_sentiment is the sentiment task's answer flipped on the same kind of review.
  for (const auto& e : tasks::generate_task("negated_sentiment", "eval", 50, 0)) {
    CHECK(e.choices.size() == 2);
    bool positive_words = e.input.find("good") != std::string::npos || e.input.find("great") != std::string::npos ||
                          e.input.find("happy") != std::string::npos || e.input.find("tasty") != std::string::npos ||
                          e.input.find("kind") != std::string::npos || e.input.find("fun") != std::string::npos;
    CHECK(e.target == (positive_words ? "negative" : "positive"));
  }
}

TEST_CASE("make_task_suite writes the layout, byte-identically for a seed, atomically", "[tasks][synthetic]") {
  test::TempDir dir;
  tasks::SuiteOptions o;
  o.seed = 5;
  o.train = 20;
  o.validation = 5;
  o.eval = 10;
  int lines = 0;
  o.progress = [&](const std::string&) { ++lines; };
  tasks::make_task_suite(dir / "a", o);
  tasks::make_task_suite(dir / "b", o);
  CHECK(lines == 2 * static_cast<int>(tasks::suite_tasks().size()));

  auto heldout = tasks::enumerate_tasks(dir / "a" / "heldout");
  CHECK(heldout.benchmark == "heldout");
  CHECK(heldout.tasks.size() >= 6);
  auto heldin = tasks::enumerate_tasks(dir / "a" / "heldin");
  CHECK(heldin.tasks.size() >= 12);
  for (const auto& [name, path] : heldin.tasks) {
    INFO(name);
    CHECK(tasks::read_task_file(dir / "a" / "train" / (name + ".jsonl")).size() == 20);
    CHECK(tasks::read_task_file(dir / "a" / "validation" / (name + ".jsonl")).size() == 5);
    CHECK(tasks::read_task_file(path).size() == 10);
    CHECK_FALSE(fs::exists(dir / "a" / "train" / (name + "_x.jsonl")));
  }
  for (const auto& [name, path] : heldout.tasks) CHECK_FALSE(fs::exists(dir / "a" / "train" / (name + ".jsonl")));

  for (const auto& entry : fs::recursive_directory_iterator(dir / "a")) {
    if (!entry.is_regular_file()) continue;
    auto rel = fs::relative(entry.path(), dir / "a");
    INFO(rel);
    CHECK(io::read_file(entry.path()) == io::read_file(dir / "b" / rel));
  }
  auto manifest = nlohmann::json::parse(io::read_file(dir / "a" / "suite.json"));
  CHECK(manifest["seed"] == 5);
  auto compose = tasks::enumerate_tasks(dir / "a" / "compose");
  CHECK(compose.benchmark == "compose");
  CHECK(compose.tasks.size() >= 6);
  for (const auto& [name, path] : compose.tasks) CHECK_FALSE(fs::exists(dir / "a" / "train" / (name + ".jsonl")));
  CHECK(manifest["held_out"].size() == heldout.tasks.size() + compose.tasks.size());
  for (const auto& t : manifest["held_out"]) {
    INFO(t.dump());
    CHECK(t.contains("kind"));
    CHECK(fs::exists(dir / "a" / t["benchmark"].get<std::string>() / (t["name"].get<std::string>() + ".jsonl")));
  }
  CHECK(manifest["zorbish"].contains("cat"));
  // The pretraining corpus holds inputs only, never a training target on its own line.
  std::string pretrain = io::read_file(dir / "a" / "corpus" / "pretrain.txt");
  CHECK(std::count(pretrain.begin(), pretrain.end(), '\n') == 20 * static_cast<long>(heldin.tasks.size()));
  bool has_reverse_prompt = pretrain.find("Reverse the list") != std::string::npos ||
                            pretrain.find("reverse order") != std::string::npos ||
                            pretrain.find("backwards") != std::string::npos;
  CHECK(has_reverse_prompt);

  try {
    tasks::make_task_suite(dir / "a", o);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::exists);
  }
  o.replace = true;
  o.seed = 6;
  tasks::make_task_suite(dir / "a", o);
  CHECK(nlohmann::json::parse(io::read_file(dir / "a" / "suite.json"))["seed"] == 6);
}
