// Converters on slices of the real files (tests/data/benchmarks, see tests/data/README.md).
#include "tasks/convert.h"

#include <catch2/catch.hpp>

#include "io/error.h"
#include "support/test_support.h"
#include "tasks/task_data.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

fs::path bench(const std::string& rel) { return test::data_dir() / "benchmarks" / rel; }

tasks::ConvertResult run(const std::string& format, const fs::path& input,
                         tasks::TemplateMode mode = tasks::TemplateMode::all, std::size_t limit = 0,
                         tasks::ChoiceStyle style = tasks::ChoiceStyle::letters) {
  tasks::ConvertOptions o;
  o.format = format;
  o.input = input;
  o.templates = mode;
  o.limit = limit;
  o.bbh_choices = style;
  return tasks::convert(o);
}

std::string error_of(const std::string& format, const fs::path& input) {
  try {
    run(format, input);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("SuperGLUE: every template on every row, verbalised labels as choices", "[tasks][convert]") {
  struct Case {
    const char* task;
    std::size_t rows;
    std::size_t templates;
    std::vector<int> first_labels;  // of the first rows (from the slice)
  };
  const Case cases[] = {
      {"cb", 8, 5, {1, 2, 0, 1}},  {"rte", 8, 5, {1, 0, 1, 1}},  {"copa", 8, 4, {1, 1, 0, 1}},
      {"wic", 8, 4, {0, 0, 0, 1}}, {"wsc", 8, 4, {0, 1, 0, 0}},  {"boolq", 4, 4, {0, 1, 1, 1}},
  };
  for (const Case& c : cases) {
    INFO(c.task);
    auto r = run(std::string("superglue-") + c.task, bench(std::string("superglue/") + c.task + ".val.jsonl"));
    CHECK(r.task == c.task);
    CHECK(r.source_rows == c.rows);
    CHECK(r.templates.size() == c.templates);
    CHECK(r.templates.size() >= 4);
    REQUIRE(r.examples.size() == c.rows * c.templates);
    for (std::size_t row = 0; row < c.first_labels.size(); ++row)
      for (std::size_t t = 0; t < c.templates; ++t) {
        const auto& e = r.examples[row * c.templates + t];
        CHECK(e.label == c.first_labels[row]);
        CHECK(e.target == e.choices.at(static_cast<std::size_t>(e.label)));
      }
    // Templates differ in wording, and every example is valid task data.
    CHECK(r.examples[0].input != r.examples[1].input);
    test::TempDir dir;
    tasks::write_task_file(dir / "t.jsonl", r.examples);
    CHECK(tasks::read_task_file(dir / "t.jsonl") == r.examples);
  }
}

TEST_CASE("SuperGLUE prompts read as T0's do", "[tasks][convert]") {
  auto cb = run("superglue-cb", bench("superglue/cb.val.jsonl"));
  CHECK_THAT(cb.examples[0].input, Catch::EndsWith("\nQuestion: Valence was helping True, False, or Neither?"));
  CHECK(cb.examples[0].choices == std::vector<std::string>{"True", "False", "Neither"});
  CHECK(cb.examples[0].target == "False");  // contradiction

  auto copa = run("superglue-copa", bench("superglue/copa.val.jsonl"));
  CHECK(copa.examples[0].input ==
        "The man turned on the faucet.\n\nWhat's the best option?\n- The toilet filled with water.\n- Water flowed from "
        "the spout.\n\nWe are looking for an effect");
  CHECK(copa.examples[0].target == "Water flowed from the spout.");
  // The "C1 or C2? premise, so/because" template uses lower-cased choices without the period.
  CHECK(copa.examples[3].input == "\"The toilet filled with water.\" or \"Water flowed from the spout.\"? The man turned on the faucet so");
  CHECK(copa.examples[3].target == "water flowed from the spout");
  // Row 4 (index 4) asks for a cause.
  CHECK_THAT(copa.examples[4 * 4].input, Catch::EndsWith("We are looking for a cause"));

  auto wsc = run("superglue-wsc", bench("superglue/wsc.val.jsonl"));
  CHECK_THAT(wsc.examples[0].input, Catch::Contains("does the pronoun \"him\" refer to anyone?"));
  auto boolq = run("superglue-boolq", bench("superglue/boolq.val.jsonl"));
  CHECK_THAT(boolq.examples[0].input, Catch::EndsWith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:"));
}

TEST_CASE("rotate gives one template per row, limit caps the rows", "[tasks][convert]") {
  auto r = run("superglue-rte", bench("superglue/rte.val.jsonl"), tasks::TemplateMode::rotate);
  REQUIRE(r.examples.size() == 8);
  auto all = run("superglue-rte", bench("superglue/rte.val.jsonl"));
  for (std::size_t i = 0; i < 8; ++i) CHECK(r.examples[i] == all.examples[i * 5 + i % 5]);
  auto limited = run("superglue-rte", bench("superglue/rte.val.jsonl"), tasks::TemplateMode::all, 3);
  CHECK(limited.source_rows == 3);
  CHECK(limited.examples.size() == 15);
}

TEST_CASE("SuperGLUE errors name the file, line and field", "[tasks][convert]") {
  test::TempDir dir;
  test::write_text(dir / "cb.jsonl",
                   "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"neutral\"}\n"
                   "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"maybe\"}\n");
  std::string msg = error_of("superglue-cb", dir / "cb.jsonl");
  CHECK_THAT(msg, Catch::Contains((dir / "cb.jsonl").string() + ":2"));
  CHECK_THAT(msg, Catch::Contains("field 'label'"));
  CHECK_THAT(msg, Catch::Contains("\"maybe\""));

  test::write_text(dir / "copa.jsonl", "{\"premise\": \"p\", \"choice1\": \"a\", \"question\": \"effect\", \"label\": 0}\n");
  msg = error_of("superglue-copa", dir / "copa.jsonl");
  CHECK_THAT(msg, Catch::Contains(":1: field 'choice2': missing"));

  test::write_text(dir / "wic.jsonl", "{\"word\": \"w\", \"sentence1\": \"a\", \"sentence2\": \"b\"}\n");
  CHECK_THAT(error_of("superglue-wic", dir / "wic.jsonl"), Catch::Contains("field 'label': missing"));

  test::write_text(dir / "rte.jsonl", "{\"premise\": \"p\",\n");
  CHECK_THAT(error_of("superglue-rte", dir / "rte.jsonl"), Catch::Contains(":1: invalid JSON"));

  test::write_text(dir / "empty.jsonl", "\n");
  CHECK_THAT(error_of("superglue-rte", dir / "empty.jsonl"), Catch::Contains("no examples"));

  try {
    run("superglue-multirc", dir / "rte.jsonl");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::usage);
    CHECK_THAT(e.hint(), Catch::Contains("superglue-copa"));
  }
}

TEST_CASE("BBH options are parsed from the input", "[tasks][convert]") {
  std::vector<std::string> letters, texts;
  REQUIRE(tasks::parse_bbh_options("Q?\nOptions:\n(A) 12/11/1937\n(B) 12/25/1937", letters, texts));
  CHECK(letters == std::vector<std::string>{"(A)", "(B)"});
  CHECK(texts == std::vector<std::string>{"12/11/1937", "12/25/1937"});
  REQUIRE(tasks::parse_bbh_options("Did it?\nOptions:\n- Yes\n- No", letters, texts));
  CHECK(letters == std::vector<std::string>{"Yes", "No"});
  CHECK_FALSE(tasks::parse_bbh_options("not ( True ) and ( True ) is", letters, texts));
  CHECK_FALSE(tasks::parse_bbh_options("Which?\nOptions:\n(A) The NB", letters, texts));  // one option: not a choice
}

TEST_CASE("BBH: choices from options, generative tasks stay generative, broken rows skipped", "[tasks][convert]") {
  auto date = run("bbh", bench("bbh/date_understanding.json"));
  CHECK(date.task == "date_understanding");
  REQUIRE(date.examples.size() == 4);
  const auto& e = date.examples[0];
  CHECK(e.choices == std::vector<std::string>{"(A)", "(B)", "(C)", "(D)", "(E)", "(F)"});
  CHECK(e.target == "(B)");
  CHECK(e.label == 1);
  CHECK_THAT(e.input, Catch::StartsWith("Today is Christmas Eve of 1937."));

  auto text = run("bbh", bench("bbh/date_understanding.json"), tasks::TemplateMode::all, 0, tasks::ChoiceStyle::text);
  CHECK(text.examples[0].choices.at(1) == "12/25/1937");
  CHECK(text.examples[0].target == "12/25/1937");

  auto causal = run("bbh", bench("bbh/causal_judgement.json"));
  CHECK(causal.examples.at(0).choices == std::vector<std::string>{"Yes", "No"});

  auto sorting = run("bbh", bench("bbh/word_sorting.json"));
  REQUIRE(sorting.examples.size() == 4);
  for (const auto& s : sorting.examples) {
    CHECK_FALSE(s.is_classification());
    CHECK_FALSE(s.target.empty());
  }

  auto movies = run("bbh", bench("bbh/movie_recommendation.json"));
  CHECK(movies.source_rows == 3);
  CHECK(movies.examples.size() == 2);
  CHECK(movies.skipped == 1);
  REQUIRE(movies.notes.size() == 1);
  CHECK_THAT(movies.notes[0], Catch::Contains("examples[2]"));
  CHECK_THAT(movies.notes[0], Catch::Contains("Monsters, Inc"));

  auto snarks = run("bbh", bench("bbh/snarks.json"));
  REQUIRE(snarks.examples.size() == 3);
  CHECK(snarks.examples[0].is_classification());
  CHECK_FALSE(snarks.examples[2].is_classification());  // a truncated row with a single option

  test::TempDir dir;
  test::write_text(dir / "x.json", "{\"examples\": [{\"input\": \"q\"}]}");
  CHECK_THAT(error_of("bbh", dir / "x.json"), Catch::Contains("examples[0]: field 'target'"));
  test::write_text(dir / "y.json", "[1]");
  CHECK_THAT(error_of("bbh", dir / "y.json"), Catch::Contains("field 'examples'"));
}

TEST_CASE("SST-2, TREC and AG News become prompted classification data", "[tasks][convert]") {
  auto sst2 = run("sst2", bench("classic/sst2.train.txt"), tasks::TemplateMode::rotate);
  REQUIRE(sst2.examples.size() == 12);
  CHECK(sst2.examples[0].input ==
        "a stirring, funny and finally transporting re-imagining of beauty and the beast and 1930s horror films Did the "
        "reviewer find this movie good or bad?");
  CHECK(sst2.examples[0].target == "good");
  CHECK(sst2.examples[1].target == "negative");
  CHECK_THAT(sst2.examples[2].input, Catch::Contains("won't sit still"));  // "wo n't" detokenised

  auto trec = run("trec", bench("classic/trec.train.txt"));
  REQUIRE(trec.examples.size() == 12 * 4);
  CHECK(trec.examples[0].target == "Description");
  CHECK(trec.examples[4].target == "Entity");
  CHECK(trec.examples[4 * 4].target == "Abbreviation");
  CHECK(trec.examples[5 * 4].target == "Person");
  CHECK(trec.examples[10 * 4].target == "Quantity");
  CHECK(trec.examples[0].choices.size() == 6);
  CHECK_THAT(trec.examples[0].input, Catch::Contains("How did serfdom develop in and then leave Russia?"));

  auto ag = run("agnews", bench("classic/agnews.test.csv"), tasks::TemplateMode::rotate);
  REQUIRE(ag.source_rows == 12);  // the header is not a row
  CHECK(ag.examples[0].target == "Business");
  CHECK(ag.examples[1].target == "Science and Technology");  // label 4, template "which_section"
  CHECK(ag.examples[1].label == 3);
  CHECK_THAT(ag.examples[1].input, Catch::Contains("competing for the $10 million Ansari X Prize"));
  // Quoted title with commas, "" inside quotes, HTML entities.
  CHECK_THAT(ag.examples[7].input, Catch::Contains("FOAFKey: FOAF, PGP, Key Distribution, and Bloom Filters"));
  CHECK_THAT(ag.examples[8].input, Catch::Contains("warns about \"phishing\" after"));
  CHECK_THAT(ag.examples[11].input, Catch::Contains("Apple Computer Inc.<AAPL.O>"));

  test::TempDir dir;
  test::write_text(dir / "sst2.txt", "1 good\n2 bad label\n");
  CHECK_THAT(error_of("sst2", dir / "sst2.txt"), Catch::Contains("sst2.txt:2: field 'label'"));
  test::write_text(dir / "trec.txt", "XYZ:foo what ?\n");
  CHECK_THAT(error_of("trec", dir / "trec.txt"), Catch::Contains("unknown coarse class 'XYZ'"));
  test::write_text(dir / "ag.csv", "1,\"title,desc\n2,t,d\n");
  CHECK_THAT(error_of("agnews", dir / "ag.csv"), Catch::Contains("not closed"));
  test::write_text(dir / "ag2.csv", "\"label\",\"title\",\"description\"\n7,t,d\n");
  CHECK_THAT(error_of("agnews", dir / "ag2.csv"), Catch::Contains("ag2.csv:2: field 'label'"));
}
