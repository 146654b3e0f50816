// gaggle train-expert / train-gate on the command line: flags, and the errors promised
// for bad data (a model is not needed for these: the data is checked before it loads).
#include <catch2/catch.hpp>

#include <filesystem>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

// A "base" with only the tokenizer: enough for every data check.
fs::path tokenizer_only_base(const TempDir& dir) {
  fs::create_directories(dir / "base");
  fs::copy_file(data_dir() / "t5-tokenizer/spiece.model", dir / "base" / "spiece.model",
                fs::copy_options::overwrite_existing);
  return dir / "base";
}

CommandResult train(const TempDir& dir, const fs::path& data, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"train-expert", "--base", tokenizer_only_base(dir).string(), "--data", data.string(),
                                   "--out",        (dir / "out").string(), "--name", "x", "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_gaggle(args);
}

}  // namespace

TEST_CASE("train-expert --help lists the paper's defaults", "[cmd][train]") {
  auto r = run_gaggle({"train-expert", "--help"});
  REQUIRE(r.exit_code == 0);
  for (const char* flag : {"--steps", "--lr", "--batch-size", "--accumulate", "--max-input-len", "--max-target-len", "--rank",
                           "--alpha", "--seed", "--eval-every", "--save-every", "--resume", "--force", "--quiet", "--device",
                           "--threads", "--targets", "--valid"})
    CHECK_THAT(r.out, Catch::Contains(flag));
  CHECK_THAT(r.out, Catch::Contains("1000"));   // steps
  CHECK_THAT(r.out, Catch::Contains("0.005"));  // lr
  CHECK_THAT(r.out, Catch::Contains("Example:"));
  auto g = run_gaggle({"train-gate", "--help"});
  REQUIRE(g.exit_code == 0);
  CHECK_THAT(g.out, Catch::Contains("--expert"));
  CHECK_THAT(g.out, Catch::Contains("100"));
}

TEST_CASE("train-expert: a bad JSONL line names the file, the line and the field", "[cmd][train]") {
  TempDir dir;
  write_text(dir / "bad.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\", \"target\": 3}\n");
  auto r = train(dir, dir / "bad.jsonl");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("bad.jsonl:2"));
  CHECK_THAT(r.err, Catch::Contains("target"));
  CHECK_FALSE(fs::exists(dir / "out"));

  write_text(dir / "broken.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"a\"\n");
  auto b = train(dir, dir / "broken.jsonl");
  CHECK(b.exit_code == 1);
  CHECK_THAT(b.err, Catch::Contains("broken.jsonl:2"));
}

TEST_CASE("train-expert: empty data and targets over the limit are clear errors", "[cmd][train]") {
  TempDir dir;
  write_text(dir / "empty.jsonl", "");
  auto e = train(dir, dir / "empty.jsonl");
  CHECK(e.exit_code == 1);
  CHECK_THAT(e.err, Catch::Contains("empty.jsonl"));

  write_text(dir / "long.jsonl", "{\"input\": \"a\", \"target\": \"one two three four five six seven\"}\n");
  auto l = train(dir, dir / "long.jsonl", {"--max-target-len", "4"});
  CHECK(l.exit_code == 1);
  CHECK_THAT(l.err, Catch::Contains("long.jsonl: example 1: field 'target'"));
  CHECK_THAT(l.err, Catch::Contains("--max-target-len"));
  CHECK_THAT(l.err, Catch::Contains("hint:"));

  auto n = train(dir, dir / "long.jsonl", {"--steps", "0"});
  CHECK(n.exit_code != 0);
}

TEST_CASE("train-expert never overwrites an existing EXPERT_DIR without --force", "[cmd][train]") {
  TempDir dir;
  fs::create_directories(dir / "out");
  write_text(dir / "out" / "keep.txt", "mine");
  write_text(dir / "d.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n");
  auto r = train(dir, dir / "d.jsonl");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("already exists"));
  CHECK_THAT(r.err, Catch::Contains("--force"));
  CHECK(read_text(dir / "out" / "keep.txt") == "mine");
}

TEST_CASE("train-gate: an expert directory without a manifest is a clear error", "[cmd][train]") {
  TempDir dir;
  fs::create_directories(dir / "expert");
  write_text(dir / "d.jsonl", "{\"input\": \"a\", \"target\": \"b\"}\n");
  auto r = run_gaggle({"train-gate", "--base", tokenizer_only_base(dir).string(), "--expert", (dir / "expert").string(),
                       "--data", (dir / "d.jsonl").string(), "--quiet"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("manifest.json"));
}
