// gaggle debug tokenize: the SentencePiece shim inside the LibTorch-linked gaggle binary,
// against Hugging Face's ids.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

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

TEST_CASE("debug tokenize --text prints JSON, usage and data errors exit 2 and 1", "[cmd][tokenize]") {
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

TEST_CASE("debug train-spm trains a tokenizer that debug tokenize then uses", "[cmd][tokenize]") {
  TempDir dir;
  std::string corpus;
  const char* lines[] = {"Reverse the list: cat dog owl", "Sort alphabetically: pig cat owl", "Translate to Zorbish: red blue",
                         "How many words? fox hen yak ant", "What is three plus four?", "Opposites of: hot big"};
  for (int rep = 0; rep < 40; ++rep)
    for (const char* l : lines) corpus += std::string(l) + "\n";
  write_text(dir / "corpus.txt", corpus);
  auto r = run_gaggle({"debug", "train-spm", "--input", (dir / "corpus.txt").string(), "--vocab-size", "80", "--out",
                       (dir / "base" / "spiece.model").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("100 extra ids"));
  CHECK_THAT(r.out, Catch::Contains("pad 0, eos 1, unk 2"));
  r = run_gaggle({"debug", "tokenize", "--base", (dir / "base").string(), "--text", "Reverse the list: <extra_id_0>",
                  "--decode"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto out = nlohmann::json::parse(r.out);
  auto ids = out["cases"][0]["input_ids"];
  CHECK(ids.back() == 1);
  CHECK(out["cases"][0]["decoded"] == "Reverse the list:");

  r = run_gaggle({"debug", "train-spm", "--input", (dir / "missing.txt").string(), "--out", (dir / "x.model").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("missing.txt"));
}

TEST_CASE("a Llama tokenizer: <s> first and no </s>, as LlamaTokenizer, and byte fallback", "[cmd][tokenize]") {
  TempDir dir;
  std::string corpus;
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran", "fast", "little", "story", "once"};
  for (int i = 0; i < 300; ++i) {
    for (int w = 0; w < 7; ++w) corpus += std::string(words[(i * 7 + w * 5) % 12]) + (w < 6 ? " " : "\n");
  }
  write_text(dir / "corpus.txt", corpus);
  auto r = run_gaggle({"debug", "train-spm", "--input", (dir / "corpus.txt").string(), "--vocab-size", "300",
                       "--model-type", "bpe", "--llama", "--extra-ids", "0", "--out",
                       (dir / "base" / "tokenizer.model").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("pad -1, eos 2, unk 0"));
  write_text(dir / "base" / "config.json",
             R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 300, "hidden_size": 16,
                 "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                 "bos_token_id": 1, "eos_token_id": 2, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
                 "tie_word_embeddings": true})");
  // "☃" and "é" are not in the corpus: their UTF-8 bytes become the pieces <0xNN> (id 3 + byte).
  const std::string text = "the cat \xE2\x98\x83 \xC3\xA9";
  r = run_gaggle({"debug", "tokenize", "--base", (dir / "base").string(), "--text", text, "--decode"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto c = nlohmann::json::parse(r.out)["cases"][0];
  std::vector<std::int64_t> ids = c["input_ids"];
  REQUIRE(ids.size() > 6);
  CHECK(ids.front() == 1);  // <s>
  CHECK(ids.back() != 2);   // no </s>
  auto has_run = [&](std::vector<std::int64_t> run) {
    return std::search(ids.begin(), ids.end(), run.begin(), run.end()) != ids.end();
  };
  CHECK(has_run({3 + 0xE2, 3 + 0x98, 3 + 0x83}));
  CHECK(has_run({3 + 0xC3, 3 + 0xA9}));
  CHECK(c["decoded"] == text);
  r = run_gaggle({"debug", "tokenize", "--base", (dir / "base").string(), "--text", "the cat", "--no-eos"});
  REQUIRE(r.exit_code == 0);
  std::vector<std::int64_t> bare = nlohmann::json::parse(r.out)["cases"][0]["input_ids"];
  CHECK(std::vector<std::int64_t>(ids.begin() + 1, ids.begin() + 1 + static_cast<std::ptrdiff_t>(bare.size())) == bare);
}
