// gaggle debug convert on slices of the real benchmark files.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {
// The cmd tests link only gaggle_io: read JSONL here.
std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(read_text(p));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}
}  // namespace

TEST_CASE("debug convert writes a benchmark directory of task files", "[cmd][convert]") {
  TempDir dir;
  fs::path sg = data_dir() / "benchmarks" / "superglue";
  auto r = run_gaggle({"debug", "convert", "--from", "superglue-cb", (sg / "cb.val.jsonl").string(), "--out",
                       (dir / "heldout").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("8 rows x 5 templates"));
  auto cb = read_jsonl(dir / "heldout" / "cb.jsonl");
  CHECK(cb.size() == 40);
  CHECK(cb[0]["choices"] == nlohmann::json::array({"True", "False", "Neither"}));
  CHECK(cb[0]["label"] == 1);
  CHECK(cb[0]["target"] == "False");

  r = run_gaggle({"debug", "convert", "--from", "superglue-copa", (sg / "copa.val.jsonl").string(), "--out",
                  (dir / "heldout").string(), "--templates", "rotate", "--name", "copa_rotated", "--limit", "5"});
  REQUIRE(r.exit_code == 0);
  CHECK(read_jsonl(dir / "heldout" / "copa_rotated.jsonl").size() == 5);
}

TEST_CASE("debug convert --from bbh takes a directory and reports skipped rows", "[cmd][convert]") {
  TempDir dir;
  auto r = run_gaggle({"debug", "convert", "--from", "bbh", (data_dir() / "benchmarks" / "bbh").string(), "--out",
                       (dir / "bbh").string(), "--choices", "text"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("5 files"));
  CHECK_THAT(r.out, Catch::Contains("word_sorting"));
  CHECK_THAT(r.out, Catch::Contains("generative"));
  CHECK_THAT(r.err, Catch::Contains("1 row(s)"));
  CHECK_THAT(r.err, Catch::Contains("Monsters, Inc"));
  auto date = read_jsonl(dir / "bbh" / "date_understanding.jsonl");
  CHECK(date[0]["target"] == "12/25/1937");
  CHECK(read_jsonl(dir / "bbh" / "word_sorting.jsonl")[0].contains("choices") == false);
}

TEST_CASE("debug convert: usage errors exit 2, bad data exits 1 naming the line", "[cmd][convert]") {
  TempDir dir;
  auto r = run_gaggle({"debug", "convert", "--from", "superglue-multirc", "x.jsonl", "--out", (dir / "o").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("known formats"));
  r = run_gaggle({"debug", "convert", "--from", "sst2", "--out", (dir / "o").string()});
  CHECK(r.exit_code == 2);
  write_text(dir / "bad.txt", "1 fine\nnot a label\n");
  r = run_gaggle({"debug", "convert", "--from", "sst2", (dir / "bad.txt").string(), "--out", (dir / "o").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("bad.txt:2"));
  CHECK_FALSE(fs::exists(dir / "o" / "sst2.jsonl"));
}

TEST_CASE("debug convert --from llama2c refuses what is not a llama2.c checkpoint", "[cmd][convert]") {
  TempDir dir;
  write_text(dir / "junk.bin", std::string(40, 'x'));
  auto r = run_gaggle({"debug", "convert", "--from", "llama2c", (dir / "junk.bin").string(), "--out", (dir / "hf").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("junk.bin") && Catch::Contains("llama2.c"));
  CHECK_FALSE(fs::exists(dir / "hf" / "config.json"));
  r = run_gaggle({"debug", "convert", "--from", "llama2c", (dir / "junk.bin").string(), (dir / "junk.bin").string(), "--out",
                  (dir / "hf").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("exactly one"));
}
