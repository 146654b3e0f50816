// The real binary: train-expert killed (SIGKILL) after a checkpoint and resumed ends at the
// same weights as an uninterrupted run; progress lines, --quiet and --force.
#include "train_fixture.h"  // torch first (glog's CHECK), then Catch

#include <catch2/catch.hpp>

#include "peft/lora.h"
#include "train/loop.h"

#include <nlohmann/json.hpp>

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> train_args(const fs::path& base, const fs::path& data, const fs::path& out) {
  return {"train-expert", "--base",   base.string(), "--data",       data.string(), "--out",       out.string(),
          "--name",       "toy",      "--steps",     "40",           "--batch-size", "4",          "--eval-every",
          "20",           "--save-every", "10",      "--threads",    "1",           "--seed",      "5"};
}

}  // namespace

TEST_CASE("train-expert killed after a checkpoint and resumed equals an uninterrupted run", "[train][resume]") {
  TempDir dir;
  make_tiny_base(dir / "base");
  tasks::write_task_file(dir / "train.jsonl", toy_examples());

  auto full = run_gaggle(train_args(dir / "base", dir / "train.jsonl", dir / "full"));
  INFO(full.err);
  REQUIRE(full.exit_code == 0);
  CHECK_THAT(full.out, Catch::Contains("expert 'toy' written to"));
  CHECK_THAT(full.err, Catch::Contains("train-expert: 40/40"));  // plain lines: stderr is not a terminal

  ::setenv("GAGGLE_TEST_KILL_AT_STEP", "20", 1);
  auto killed = run_gaggle(train_args(dir / "base", dir / "train.jsonl", dir / "resumed"));
  ::unsetenv("GAGGLE_TEST_KILL_AT_STEP");
  CHECK(killed.exit_code == 128 + 9);
  CHECK_FALSE(fs::exists(dir / "resumed"));
  auto work = dir / ".resumed.train";
  REQUIRE(fs::exists(work / "checkpoint" / "state.json"));
  CHECK(train::read_train_log(work / "train-log.jsonl").back()["step"] == 20);

  auto args = train_args(dir / "base", dir / "train.jsonl", dir / "resumed");
  args.push_back("--resume");
  args.push_back("--json");
  auto resumed = run_gaggle(args);
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto j = nlohmann::json::parse(resumed.out);
  CHECK(j["resumed_from"] == 20);
  CHECK_FALSE(fs::exists(work));

  auto a = peft::read_tensors(dir / "full" / "adapter.safetensors");
  auto b = peft::read_tensors(dir / "resumed" / "adapter.safetensors");
  REQUIRE(a.size() == b.size());
  double max_diff = 0;
  for (const auto& [name, t] : a) max_diff = std::max(max_diff, (t - b.at(name)).abs().max().item<double>());
  INFO("max |full - resumed| = " << max_diff);
  CHECK(max_diff <= 1e-6);
  auto log_a = train::read_train_log(dir / "full" / "train-log.jsonl");
  auto log_b = train::read_train_log(dir / "resumed" / "train-log.jsonl");
  REQUIRE(log_a.size() == log_b.size());
  for (size_t i = 0; i < log_a.size(); ++i) {
    CHECK(log_a[i]["step"] == log_b[i]["step"]);
    CHECK(log_a[i]["loss"].get<double>() == Approx(log_b[i]["loss"].get<double>()).epsilon(1e-5));
  }

  // An existing EXPERT_DIR is never overwritten without --force.
  auto again = run_gaggle(train_args(dir / "base", dir / "train.jsonl", dir / "full"));
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("already exists"));
  CHECK_THAT(again.err, Catch::Contains("--force"));
  auto quiet_args = train_args(dir / "base", dir / "train.jsonl", dir / "full");
  *std::find(quiet_args.begin(), quiet_args.end(), "40") = "4";   // --steps 4
  *std::find(quiet_args.begin(), quiet_args.end(), "20") = "0";   // --eval-every 0
  quiet_args.insert(quiet_args.end(), {"--force", "--quiet"});
  auto forced = run_gaggle(quiet_args);
  CHECK(forced.exit_code == 0);
  CHECK(forced.err.empty());
  CHECK(train::read_train_log(dir / "full" / "train-log.jsonl").back()["step"] == 4);

  // A resume with other settings is refused by name.
  ::setenv("GAGGLE_TEST_KILL_AT_STEP", "10", 1);
  run_gaggle(train_args(dir / "base", dir / "train.jsonl", dir / "other"));
  ::unsetenv("GAGGLE_TEST_KILL_AT_STEP");
  auto bad = train_args(dir / "base", dir / "train.jsonl", dir / "other");
  bad.insert(bad.end(), {"--resume", "--lr", "0.01"});
  auto refused = run_gaggle(bad);
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("setting 'lr'"));
}
