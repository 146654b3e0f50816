// examples/quickstart.sh in miniature (few steps, few examples): every verb of the story
// runs for real, from an empty directory, with gaggle found on PATH; and the shipped tiny
// base (examples/base) is a loadable Hugging Face T5 within the 10 MB budget.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

CommandResult run_quickstart(const fs::path& cwd, std::vector<std::string> env) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "PATH=" + gaggle_binary().parent_path().string() + ":/usr/bin:/bin",
                                   "HOME=" + cwd.string()};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back("bash");
  argv.push_back((source_dir() / "examples/quickstart.sh").string());
  return run_command(argv, {}, cwd);
}

}  // namespace

TEST_CASE("the shipped tiny base is a T5 checkpoint under 10 MB", "[cmd][quickstart]") {
  const fs::path base = source_dir() / "examples/base";
  uint64_t bytes = 0;
  for (const char* f : {"config.json", "model.safetensors", "spiece.model"}) {
    REQUIRE(fs::exists(base / f));
    bytes += fs::file_size(base / f);
  }
  CHECK(bytes <= 10u * 1000 * 1000);
  auto r = run_gaggle({"inspect", base.string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("4+4 layers"));
  CHECK_THAT(r.out, Catch::Contains("spiece.model"));
  // Made by gaggle's span-corruption pretraining, not on the tasks' answers.
  auto info = nlohmann::json::parse(read_text(base / "pretrain.json"));
  CHECK_THAT(info["objective"].get<std::string>(), Catch::StartsWith("span_corruption"));
  CHECK(info["corpus"] == "pretrain.txt");
}

TEST_CASE("the quickstart runs end to end in miniature", "[cmd][quickstart]") {
  TempDir dir;
  auto r = run_quickstart(dir.path(), {"QUICKSTART_STEPS=20", "QUICKSTART_GATE_STEPS=5", "QUICKSTART_LIMIT=8",
                                       "QUICKSTART_TRAIN=100"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* s : {"1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7", "done in"}) CHECK_THAT(r.err, Catch::Contains(s));
  for (const char* e : {"color", "translate", "count", "next"}) {
    CHECK(fs::exists(dir / "experts" / e / "manifest.json"));
    auto m = nlohmann::json::parse(read_text(dir.path() / "experts" / e / "manifest.json"));
    CHECK(m["method"] == "phatgoose");  // gate trained
  }
  CHECK(fs::exists(dir / "hub.git"));
  CHECK(fs::exists(dir / "routed"));
  // The table: base, merged and PHATGOOSE on the five held-out tasks.
  auto report = nlohmann::json::parse(read_text(dir / "report/quickstart.json"));
  std::set<std::pair<std::string, std::string>> cells;
  for (const auto& row : report["rows"]) {
    cells.insert({row["method"].get<std::string>(), row["task"].get<std::string>()});
    CHECK(row["n"].get<int>() == 8);
  }
  for (const char* m : {"Base", "Merged", "PHATGOOSE"})
    for (const char* t : {"color_reworded", "translate_reworded", "next_reworded", "color_next", "translate_next"})
      CHECK(cells.count({m, t}) == 1);
  CHECK_THAT(r.out, Catch::Contains("| PHATGOOSE |"));
}

TEST_CASE("the quickstart refuses a directory that is not empty", "[cmd][quickstart]") {
  TempDir dir;
  write_text(dir / "notes.txt", "mine\n");
  auto r = run_quickstart(dir.path(), {});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("empty directory"));
  CHECK(read_text(dir / "notes.txt") == "mine\n");
}
