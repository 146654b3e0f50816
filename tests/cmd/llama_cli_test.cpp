// The decoder-only pipeline through the command line (issue #14): a Llama base converted
// from llama2.c's stories260K by `gaggle debug convert`, a BPE tokenizer trained by `gaggle
// debug train-spm`, then train-expert, train-gate, sign, publish, pull, assemble, eval
// (rank classification and exact match), generate and inspect — the binaries a user runs.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

CommandResult ok(const std::vector<std::string>& args) {
  auto r = run_gaggle(args);
  INFO("gaggle " << args.at(0) << (args.size() > 1 ? " " + args[1] : "") << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

// A task whose answer is the colour named by its word: three answers, twelve words.
void write_task(const fs::path& path, bool with_choices) {
  const std::vector<std::string> words = {"apple", "river", "stone", "cloud", "tiger", "piano",
                                          "lemon", "candle", "forest", "glass", "horse", "bread"};
  const std::vector<std::string> answers = {"red", "blue", "green"};
  std::ofstream out(path);
  for (int rep = 0; rep < 4; ++rep)
    for (std::size_t i = 0; i < words.size(); ++i) {
      nlohmann::json j = {{"input", "colour of " + words[i] + ":"}, {"target", answers[i % 3]}};
      if (with_choices) j["choices"] = answers, j["label"] = static_cast<int>(i % 3);
      out << j.dump() << "\n";
      if (!with_choices && rep == 0 && i == 5) break;
    }
}

}  // namespace

TEST_CASE("the decoder-only pipeline through the CLI on a converted llama2.c base", "[cmd][llama][slow]") {
  TempDir tmp;
  const fs::path base = tmp / "base";
  ok({"debug", "convert", "--from", "llama2c", (data_dir() / "llama-stories260k" / "stories260K.bin").string(), "--out",
      base.string()});
  // The model has 512 token ids: a BPE tokenizer of at most that many pieces, trained here.
  // Exactly 512 pieces, so that every id the model can emit decodes: the task's words
  // plus enough random letter strings for BPE to find that many merges.
  {
    std::ofstream corpus(tmp / "corpus.txt");
    std::mt19937 rng(0);
    std::uniform_int_distribution<int> letter(0, 25), length(2, 8);
    for (int i = 0; i < 3000; ++i) {
      if (i % 10 == 0)
        corpus << "colour of apple river stone cloud tiger piano lemon candle forest glass horse bread: red blue green\n";
      for (int w = 0; w < 10; ++w) {
        const int n = length(rng);
        for (int c = 0; c < n; ++c) corpus << static_cast<char>('a' + letter(rng));
        corpus << (w == 9 ? "\n" : " ");
      }
    }
  }
  ok({"debug", "train-spm", "--input", (tmp / "corpus.txt").string(), "--vocab-size", "512", "--model-type", "bpe",
      "--extra-ids", "0", "--out", (base / "tokenizer.model").string()});
  auto inspected = ok({"inspect", base.string()});
  CHECK_THAT(inspected.out, Catch::Contains("llama") || Catch::Contains("Llama"));

  write_task(tmp / "train.jsonl", true);
  write_task(tmp / "eval.jsonl", true);
  write_task(tmp / "gen.jsonl", false);
  const fs::path expert = tmp / "colour";
  ok({"train-expert", "--base", base.string(), "--data", (tmp / "train.jsonl").string(), "--out", expert.string(),
      "--name", "colour", "--steps", "150", "--batch-size", "8", "--rank", "8", "--lr", "1e-2", "--eval-every", "50", "--save-every",
      "0", "-q"});
  ok({"train-gate", "--base", base.string(), "--expert", expert.string(), "--data", (tmp / "train.jsonl").string(),
      "--steps", "10", "-q"});
  // Training moved: the validation loss fell between the first and the last validation.
  // (This converted model is not a sensible language model, see tests/data/README.md:
  // it learns, slowly; accuracy is not asserted.)
  std::vector<double> valid;
  std::istringstream log(read_text(expert / "train-log.jsonl"));
  for (std::string line; std::getline(log, line);) {
    auto entry = nlohmann::json::parse(line);
    if (entry.contains("valid_loss")) valid.push_back(entry["valid_loss"].get<double>());
  }
  REQUIRE(valid.size() >= 2);
  CHECK(valid.back() < valid.front());
  auto manifest = nlohmann::json::parse(read_text(expert / "manifest.json"));
  CHECK(manifest.dump().find("llama") != std::string::npos);

  // Signed, published to a hub, pulled into a verified pool, assembled.
  ok({"keygen", "-f", (tmp / "key").string(), "-C", "alice"});
  const std::string pub = read_text(tmp / "key.pub");
  write_text(tmp / "trust", "alice namespaces=\"gaggle-bundle\" " + pub.substr(0, pub.find(' ', pub.find(' ') + 1)) + "\n");
  ok({"sign", expert.string(), "--key", (tmp / "key").string()});
  ok({"hub", "init", (tmp / "hub.git").string(), "--trust", (tmp / "trust").string()});
  ok({"publish", expert.string(), "--hub", (tmp / "hub.git").string(), "--trust", (tmp / "trust").string(), "--cache",
      (tmp / "cache").string()});
  ok({"pull", "--hub", (tmp / "hub.git").string(), "--pool", (tmp / "pool").string(), "--trust",
      (tmp / "trust").string()});
  ok({"assemble", "--base", base.string(), "--pool", (tmp / "pool").string(), "--router", "phatgoose", "--top-k", "1",
      "--out", (tmp / "routed").string(), "-q"});

  // eval: rank classification and exact match, the routed model beside the base.
  auto report = tmp / "report.json";
  ok({"eval", "--model", (tmp / "routed").string(), "--base", base.string(), "--with-base", "--tasks",
      (tmp / "eval.jsonl").string(), (tmp / "gen.jsonl").string(), "--report", report.string(), "-q"});
  auto j = nlohmann::json::parse(read_text(report));
  std::map<std::string, std::map<std::string, double>> score;  // method -> task -> value
  for (const auto& row : j["rows"]) {
    score[row["method"]][row["task"]] = row["value"].get<double>();
    CHECK(row["metric"] == (row["task"] == "gen" ? "exact_match" : "accuracy"));
  }
  REQUIRE(score.count("Base"));
  REQUIRE(score.size() == 2);
  for (const auto& [method, tasks] : score) {
    INFO(method);
    REQUIRE(tasks.count("eval"));
    REQUIRE(tasks.count("gen"));
    for (const auto& [task, v] : tasks) CHECK((v >= 0 && v <= 100));
  }

  auto generated = ok({"generate", "--model", (tmp / "routed").string(), "--input", "colour of apple:", "--input",
                       "colour of river:", "--max-new-tokens", "4", "--trace", (tmp / "trace.json").string()});
  CHECK_FALSE(generated.out.empty());
  auto again = ok({"generate", "--model", (tmp / "routed").string(), "--input", "colour of apple:", "--input",
                   "colour of river:", "--max-new-tokens", "4"});
  CHECK(again.out == generated.out);  // greedy: deterministic
  auto trace = nlohmann::json::parse(read_text(tmp / "trace.json"));
  CHECK(trace["experts"].size() == 1);
}
