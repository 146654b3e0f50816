// The T5 tokenizer against Hugging Face's slow T5Tokenizer (tests/data/golden/t5-tokenizer),
// through the SentencePiece shim, in a torch-free process.
#include "text/tokenizer.h"

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

// The test executable lives in build/tests/text; the shim beside the gaggle binary.
void use_built_shim() {
  ::setenv("GAGGLE_SPM_SHIM", (fs::path(GAGGLE_BUILD_DIR) / "libgaggle_spm.so").c_str(), 1);
}

const text::Tokenizer& t5() {
  use_built_shim();
  static text::Tokenizer tok = text::Tokenizer::load_model_file(test::data_dir() / "t5-tokenizer" / "spiece.model");
  return tok;
}

}  // namespace

TEST_CASE("the T5 tokenizer matches Hugging Face's ids on all 28 golden texts", "[text][tokenizer]") {
  const text::Tokenizer& tok = t5();
  nlohmann::json golden = io::read_json_file(test::data_dir() / "golden" / "t5-tokenizer" / "cases.json");
  REQUIRE(golden["cases"].size() == 28);
  int matched = 0;
  for (const auto& c : golden["cases"]) {
    std::string text = c["text"].get<std::string>();
    auto expected = c["input_ids"].get<std::vector<std::int64_t>>();
    INFO("text: " << text);
    CHECK(tok.encode(text) == expected);
    matched += tok.encode(text) == expected;
  }
  CHECK(matched == 28);
}

TEST_CASE("decode follows Hugging Face's decode(skip_special_tokens=True)", "[text][tokenizer]") {
  const text::Tokenizer& tok = t5();
  nlohmann::json golden = io::read_json_file(test::data_dir() / "golden" / "t5-tokenizer" / "cases.json");
  for (const auto& c : golden["cases"]) {
    INFO("text: " << c["text"].get<std::string>());
    CHECK(tok.decode(c["input_ids"].get<std::vector<std::int64_t>>()) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("the T5 vocabulary: special ids, sentinels and pieces", "[text][tokenizer]") {
  const text::Tokenizer& tok = t5();
  CHECK(tok.vocab_size() == 32100);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.eos_id() == 1);
  CHECK(tok.unk_id() == 2);
  CHECK(tok.extra_ids() == 100);
  CHECK(tok.sentinel_id(0) == 32099);
  CHECK(tok.sentinel_id(99) == 32000);
  CHECK_THROWS_AS(tok.sentinel_id(100), Error);
  CHECK(tok.id_to_piece(32099) == "<extra_id_0>");
  CHECK(tok.id_to_piece(1) == "</s>");
  CHECK(tok.id_to_piece(8774) == "\xE2\x96\x81Hello");
  CHECK(tok.piece_to_id("<extra_id_7>") == 32092);
  CHECK(tok.piece_to_id("\xE2\x96\x81Hello") == 8774);
  CHECK(tok.piece_to_id("no-such-piece-here") == 2);
  CHECK_THROWS_AS(tok.id_to_piece(32100), Error);
  CHECK_THROWS_AS(tok.decode({5, 40000}), Error);
}

TEST_CASE("special tokens in text: sentinels, </s>, <pad> split out, near-misses do not", "[text][tokenizer]") {
  const text::Tokenizer& tok = t5();
  CHECK(tok.encode("<extra_id_0><extra_id_1>") == std::vector<std::int64_t>{32099, 32098, 1});
  auto cat = [](std::vector<std::vector<std::int64_t>> parts) {
    std::vector<std::int64_t> out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  CHECK(tok.encode("a <pad> b", false) == cat({tok.encode("a", false), {0}, tok.encode("b", false)}));
  CHECK(tok.encode("x</s>", true) == cat({tok.encode("x", false), {1, 1}}));
  CHECK(tok.encode("<unk>", false) == std::vector<std::int64_t>{2});
  // Not sentinels: out of range, leading zero, unterminated. They go through SentencePiece.
  for (std::string s : {"<extra_id_100>", "<extra_id_01>", "<extra_id_3", "<extra_id_>"}) {
    INFO(s);
    auto ids = tok.encode(s, false);
    CHECK(ids.size() > 1);
    for (auto id : ids) CHECK(id < 32000);
  }
  // Whitespace next to a special token does not change the ids (it is stripped).
  CHECK(tok.encode("a<extra_id_0>b") == tok.encode("a \t <extra_id_0>\n b"));
  CHECK(tok.encode("Hello", false) == std::vector<std::int64_t>{8774});
  // Without skipping, special tokens are written by name the way HF's
  // convert_tokens_to_string joins them.
  CHECK(tok.decode({8774, 32099, 296, 1}, false) == "Hello<extra_id_0> world</s>");
}

TEST_CASE("invalid UTF-8 and odd whitespace never crash and stay in the vocabulary", "[text][tokenizer]") {
  const text::Tokenizer& tok = t5();
  for (std::string s : {std::string("\xff\xfe abc \xc3"), std::string("a\xe2\x80<extra_id_1>\x80\x80" "b"),
                        std::string("\xe3\x80\x80<extra_id_2>\xc2\x85x"), std::string(1000, ' '),
                        std::string("<extra_id_99999999999999999999>"), std::string("\0mid\0", 5)}) {
    auto ids = tok.encode(s);
    CHECK(ids.back() == 1);
    for (auto id : ids) CHECK((id >= 0 && id < tok.vocab_size()));
    CHECK_NOTHROW(tok.decode(ids));
  }
  // Python's str.strip() whitespace (ideographic space, NEL) around a sentinel is stripped.
  CHECK(tok.encode("\xe3\x80\x80<extra_id_2>\xc2\x85x") == tok.encode("<extra_id_2>x"));
}

TEST_CASE("base directories: spiece.model, tokenizer.json only, nothing, broken file", "[text][tokenizer]") {
  use_built_shim();
  test::TempDir dir;
  fs::create_directories(dir / "hf");
  fs::copy_file(test::data_dir() / "t5-tokenizer" / "spiece.model", dir / "hf" / "spiece.model");
  CHECK(text::Tokenizer::load(dir / "hf").encode("Hello world!") == std::vector<std::int64_t>{8774, 296, 55, 1});

  fs::create_directories(dir / "fast");
  test::write_text(dir / "fast" / "tokenizer.json", "{}");
  try {
    text::Tokenizer::load(dir / "fast");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::unsupported);
    CHECK(std::string(e.what()).find("tokenizer.json") != std::string::npos);
    CHECK(std::string(e.what()).find((dir / "fast").string()) != std::string::npos);
    CHECK(e.hint().find("spiece.model") != std::string::npos);
  }

  fs::create_directories(dir / "empty");
  CHECK_THROWS_WITH(text::Tokenizer::load(dir / "empty"), Catch::Contains("spiece.model"));
  CHECK_THROWS_WITH(text::Tokenizer::load(dir / "absent"), Catch::Contains("does not exist"));

  test::write_text(dir / "bad.model", "this is not a protobuf");
  try {
    text::Tokenizer::load_model_file(dir / "bad.model");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid);
    CHECK(std::string(e.what()).find("bad.model") != std::string::npos);
  }
}

TEST_CASE("a Llama directory's tokenizer.model loads without sentinels", "[text][tokenizer]") {
  use_built_shim();
  test::TempDir dir;
  fs::copy_file(test::data_dir() / "t5-tokenizer" / "spiece.model", dir / "tokenizer.model");
  auto tok = text::Tokenizer::load(dir.path());
  CHECK(tok.model_path().filename() == "tokenizer.model");
  CHECK(tok.extra_ids() == 0);
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.encode("Hello world!", false) == std::vector<std::int64_t>{8774, 296, 55});
}

TEST_CASE("training a SentencePiece model through the shim gives a T5-style tokenizer", "[text][tokenizer]") {
  use_built_shim();
  test::TempDir dir;
  {
    std::ofstream out(dir / "corpus.txt");
    const char* words[] = {"alpha", "beta", "gamma", "delta", "red", "green", "blue", "apple", "banana", "cherry",
                           "count", "the", "letters", "reverse", "sort", "answer", "question", "yes", "no"};
    unsigned x = 12345;
    for (int line = 0; line < 400; ++line) {
      for (int w = 0; w < 8; ++w) {
        x = x * 1103515245u + 12345u;
        out << words[(x >> 16) % 19] << (w == 7 ? "" : " ");
      }
      out << "\n";
    }
  }
  text::TrainOptions o;
  o.inputs = {dir / "corpus.txt"};
  o.output = dir / "tok" / "spiece.model";
  o.vocab_size = 60;
  text::train_sentencepiece(o);
  REQUIRE(fs::is_regular_file(o.output));
  auto tok = text::Tokenizer::load(dir / "tok");
  CHECK(tok.pad_id() == 0);
  CHECK(tok.eos_id() == 1);
  CHECK(tok.unk_id() == 2);
  // The vocabulary is at most the size asked for (a small corpus allows fewer pieces),
  // and the 100 sentinels follow it.
  CHECK(tok.vocab_size() > 100 + 20);
  CHECK(tok.vocab_size() <= 100 + 60);
  CHECK(tok.sentinel_id(0) == tok.vocab_size() - 1);
  auto ids = tok.encode("alpha beta <extra_id_0> cherry");
  CHECK(ids.back() == 1);
  CHECK(std::find(ids.begin(), ids.end(), tok.sentinel_id(0)) != ids.end());
  for (auto id : ids) CHECK(id != tok.unk_id());
  CHECK(tok.decode(ids) == "alpha beta cherry");
  // Deterministic: the same input gives the same bytes.
  o.output = dir / "tok2" / "spiece.model";
  text::train_sentencepiece(o);
  CHECK(test::read_text(dir / "tok" / "spiece.model") == test::read_text(dir / "tok2" / "spiece.model"));

  o.inputs = {dir / "missing.txt"};
  CHECK_THROWS_WITH(text::train_sentencepiece(o), Catch::Contains("missing.txt"));
}
