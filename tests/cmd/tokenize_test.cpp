// gaggle debug tokenize: the SentencePiece shim inside the LibTorch-linked gaggle binary,
// against Hugging Face's ids.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

TEST_CASE("debug tokenize reproduces Hugging Face's ids inside the torch binary", "[cmd][tokenize]") {
  TempDir dir;
  fs::create_directories(dir / "base");
  fs::copy_file(data_dir() / "t5-tokenizer" / "spiece.model", dir / "base" / "spiece.model");
  fs::path cases = data_dir() / "golden" / "t5-tokenizer" / "cases.json";
  auto r = run_gaggle({"debug", "tokenize", "--base", (dir / "base").string(), "--cases", cases.string(), "--out",
                       (dir / "out.json").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = nlohmann::json::parse(read_text(dir / "out.json"));
  auto golden = nlohmann::json::parse(read_text(cases));
  REQUIRE(out["cases"].size() == golden["cases"].size());
  for (std::size_t i = 0; i < golden["cases"].size(); ++i) {
    INFO("case " << i << ": " << golden["cases"][i]["text"]);
    CHECK(out["cases"][i]["text"] == golden["cases"][i]["text"]);
    CHECK(out["cases"][i]["input_ids"] == golden["cases"][i]["input_ids"]);
  }
}

TEST_CASE("debug tokenize --text prints JSON; usage and data errors exit 2 and 1", "[cmd][tokenize]") {
  auto r = run_gaggle({"debug", "tokenize", "--spm", (data_dir() / "t5-tokenizer" / "spiece.model").string(), "--text",
                       "The <extra_id_0> walks in <extra_id_1> park", "--decode"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = nlohmann::json::parse(r.out);
  CHECK(out["cases"][0]["input_ids"] == nlohmann::json::array({37, 32099, 10681, 16, 32098, 2447, 1}));
  CHECK(out["cases"][0]["decoded"] == "The walks in park");

  r = run_gaggle({"debug", "tokenize", "--text", "x"});
  CHECK(r.exit_code == 2);

  TempDir dir;
  fs::create_directories(dir / "fast");
  write_text(dir / "fast" / "tokenizer.json", "{}");
  r = run_gaggle({"debug", "tokenize", "--base", (dir / "fast").string(), "--text", "x"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("tokenizer.json"));
  CHECK_THAT(r.err, Catch::Contains("hint:"));

  write_text(dir / "cases.json", R"({"cases":[{"txt":"hi"}]})");
  r = run_gaggle({"debug", "tokenize", "--spm", (data_dir() / "t5-tokenizer" / "spiece.model").string(), "--cases",
                  (dir / "cases.json").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("cases[0]"));
}

TEST_CASE("a missing SentencePiece shim is a clear error naming where it looked", "[cmd][tokenize]") {
  // A copy of the binary in a directory without the shim, and no GAGGLE_SPM_SHIM.
  TempDir dir;
  fs::copy_file(gaggle_binary(), dir / "gaggle");
  auto r = run_command({"env", "-u", "GAGGLE_SPM_SHIM", (dir / "gaggle").string(), "debug", "tokenize", "--spm",
                        (data_dir() / "t5-tokenizer" / "spiece.model").string(), "--text", "hi"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("libgaggle_spm.so"));
  CHECK_THAT(r.err, Catch::Contains("GAGGLE_SPM_SHIM"));

  // ... and found through GAGGLE_SPM_SHIM.
  r = run_command({"env", "GAGGLE_SPM_SHIM=" + (fs::path(GAGGLE_BUILD_DIR) / "libgaggle_spm.so").string(),
                   (dir / "gaggle").string(), "debug", "tokenize", "--spm",
                   (data_dir() / "t5-tokenizer" / "spiece.model").string(), "--text", "Hello world!"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("8774"));
}
