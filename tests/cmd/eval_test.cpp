// gaggle eval, end to end through the built binary: a tiny T5 checkpoint written here by
// hand (random weights, the real T5 vocabulary and spiece.model), tiny task files, and a
// pool of two experts with random LoRA factors, gates, activations and embeddings.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kVocab = 32128, kD = 8, kHeads = 2, kDkv = 4, kFf = 8, kBuckets = 8;

// Deterministic uniform values in [-scale, scale].
std::vector<float> randoms(std::size_t n, std::uint64_t& state, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = scale * (static_cast<float>((state >> 40) & 0xffffff) / 8388608.0f - 1.0f);
  }
  return v;
}

struct Linear {
  std::string name;
  std::int64_t d_out, d_in;
};

std::vector<Linear> linears() {
  std::vector<Linear> out;
  auto attention = [&](const std::string& p) {
    for (const char* x : {"q", "k", "v"}) out.push_back({p + "." + x, kHeads * kDkv, kD});
    out.push_back({p + ".o", kD, kHeads * kDkv});
  };
  attention("encoder.block.0.layer.0.SelfAttention");
  out.push_back({"encoder.block.0.layer.1.DenseReluDense.wi", kFf, kD});
  out.push_back({"encoder.block.0.layer.1.DenseReluDense.wo", kD, kFf});
  attention("decoder.block.0.layer.0.SelfAttention");
  attention("decoder.block.0.layer.1.EncDecAttention");
  out.push_back({"decoder.block.0.layer.2.DenseReluDense.wi", kFf, kD});
  out.push_back({"decoder.block.0.layer.2.DenseReluDense.wo", kD, kFf});
  return out;
}

void write_base(const fs::path& dir) {
  fs::create_directories(dir);
  write_text(dir / "config.json", nlohmann::json{{"architectures", {"T5ForConditionalGeneration"}},
                                                 {"model_type", "t5"},
                                                 {"d_model", kD},
                                                 {"d_kv", kDkv},
                                                 {"d_ff", kFf},
                                                 {"num_heads", kHeads},
                                                 {"num_layers", 1},
                                                 {"num_decoder_layers", 1},
                                                 {"relative_attention_num_buckets", kBuckets},
                                                 {"relative_attention_max_distance", 16},
                                                 {"feed_forward_proj", "relu"},
                                                 {"vocab_size", kVocab},
                                                 {"pad_token_id", 0},
                                                 {"eos_token_id", 1},
                                                 {"decoder_start_token_id", 0},
                                                 {"layer_norm_epsilon", 1e-6}}
                                      .dump(2));
  std::uint64_t state = 42;
  gaggle::io::SafetensorsWriter w;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float scale) {
    std::size_t n = 1;
    for (auto s : shape) n *= static_cast<std::size_t>(s);
    auto v = scale == 0 ? std::vector<float>(n, 1.0f) : randoms(n, state, scale);
    w.add_f32(name, shape, v);
  };
  add("shared.weight", {kVocab, kD}, 1.0f);
  for (const auto& l : linears()) add(l.name + ".weight", {l.d_out, l.d_in}, 0.5f);
  add("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {kBuckets, kHeads}, 0.5f);
  add("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {kBuckets, kHeads}, 0.5f);
  for (const char* n : {"encoder.block.0.layer.0.layer_norm.weight", "encoder.block.0.layer.1.layer_norm.weight",
                        "encoder.final_layer_norm.weight", "decoder.block.0.layer.0.layer_norm.weight",
                        "decoder.block.0.layer.1.layer_norm.weight", "decoder.block.0.layer.2.layer_norm.weight",
                        "decoder.final_layer_norm.weight"})
    add(n, {kD}, 0.0f);
  w.write(dir / "model.safetensors");
  fs::copy_file(data_dir() / "t5-tokenizer" / "spiece.model", dir / "spiece.model");
}

void write_expert(const fs::path& dir, std::uint64_t seed) {
  fs::create_directories(dir);
  std::uint64_t state = seed;
  gaggle::io::SafetensorsWriter w;
  const std::int64_t r = 2;
  for (const auto& l : linears()) {
    w.add_f32(l.name + ".lora_A", {r, l.d_in}, randoms(static_cast<std::size_t>(r * l.d_in), state, 1.0f));
    w.add_f32(l.name + ".lora_B", {l.d_out, r}, randoms(static_cast<std::size_t>(l.d_out * r), state, 1.0f));
    w.add_f32(l.name + ".gate", {l.d_in}, randoms(static_cast<std::size_t>(l.d_in), state, 1.0f));
    w.add_f32(l.name + ".avg_act", {l.d_in}, randoms(static_cast<std::size_t>(l.d_in), state, 1.0f));
  }
  w.add_f32("retrieval_embeddings", {3, kD}, randoms(3 * kD, state, 1.0f));
  w.write(dir / "adapter.safetensors");
}

void write_tasks(const fs::path& dir) {
  fs::create_directories(dir);
  write_text(dir / "sentiment.jsonl",
             "{\"input\": \"Review: a wonderful film. Positive?\", \"choices\": [\"yes\", \"no\"], \"label\": 0}\n"
             "{\"input\": \"Review: dull and long. Positive?\", \"choices\": [\"yes\", \"no\"], \"label\": 1}\n"
             "{\"input\": \"Review: an instant classic. Positive?\", \"choices\": [\"yes\", \"no\"], \"label\": 0}\n"
             "{\"input\": \"Review: nothing works. Positive?\", \"choices\": [\"yes\", \"no\"], \"label\": 1}\n");
  write_text(dir / "echo.jsonl",
             "{\"input\": \"Repeat: hello\", \"target\": \"hello\"}\n"
             "{\"input\": \"Repeat: goodbye\", \"target\": \"goodbye\"}\n");
}

struct Fixture {
  TempDir tmp;
  Fixture() {
    write_base(tmp / "base");
    write_tasks(tmp / "heldout");
    write_expert(tmp / "pool" / "alpha", 7);
    write_expert(tmp / "pool" / "beta", 8);
  }
};

}  // namespace

TEST_CASE("eval --base scores every task and writes the JSON, Markdown, CSV and HTML reports", "[cmd][eval]") {
  Fixture f;
  const std::vector<std::string> args = {"eval", "--base", (f.tmp / "base").string(), "--tasks",
                                         (f.tmp / "heldout").string(), "--report", (f.tmp / "out" / "r.json").string(),
                                         "--seed", "5"};
  auto r = run_gaggle(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("| Method | echo | sentiment | **heldout** |"));
  CHECK_THAT(r.out, Catch::Contains("| Base |"));
  CHECK_THAT(r.err, Catch::Contains("eval: "));
  CHECK(read_text(f.tmp / "out" / "r.md") == r.out);
  auto j = nlohmann::json::parse(read_text(f.tmp / "out" / "r.json"));
  REQUIRE(j["rows"].size() == 2);
  CHECK(j["rows"][0]["method"] == "Base");
  CHECK(j["rows"][0]["task"] == "echo");
  CHECK(j["rows"][0]["metric"] == "exact_match");
  CHECK(j["rows"][0]["n"] == 2);
  CHECK(j["rows"][1]["metric"] == "accuracy");
  CHECK(j["rows"][1]["n"] == 4);
  CHECK(j["means"].size() == 1);
  CHECK(j["meta"]["seed"] == 5);
  CHECK(j["meta"]["base"]["fingerprint"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK_THAT(read_text(f.tmp / "out" / "r.csv"), Catch::StartsWith("method,task,benchmark,metric,value,n\n"));
  CHECK(fs::exists(f.tmp / "out" / "r.html"));

  // The same command again: identical numbers (identical bytes).
  const std::string first = read_text(f.tmp / "out" / "r.json");
  auto again = run_gaggle(args);
  REQUIRE(again.exit_code == 0);
  CHECK(read_text(f.tmp / "out" / "r.json") == first);
}

TEST_CASE("eval over a pool: every router, single experts, Oracle and routing plots", "[cmd][eval]") {
  Fixture f;
  auto r = run_gaggle({"eval", "--base", (f.tmp / "base").string(), "--pool", (f.tmp / "pool").string(), "--routers",
                       "phatgoose,arrow,average-activation,retrieval,merged", "--single-experts", "--expert",
                       (f.tmp / "pool" / "beta").string(), "--tasks", (f.tmp / "heldout" / "sentiment.jsonl").string(),
                       "--limit", "3", "--batch-size", "2", "--report", (f.tmp / "table.json").string(), "--quiet"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  auto j = nlohmann::json::parse(read_text(f.tmp / "table.json"));
  std::vector<std::string> methods;
  for (const auto& row : j["rows"]) {
    methods.push_back(row["method"]);
    CHECK(row["n"] == 3);
  }
  CHECK(methods == std::vector<std::string>{"Expert beta", "PHATGOOSE", "Arrow", "Average activation", "Retrieval",
                                            "Merged", "Single alpha", "Single beta", "Oracle", "Best individual"});
  for (const auto& m : j["meta"]["methods"])
    if (m["name"] == "Oracle" || m["name"] == "Best individual") CHECK(m["zero_shot"] == false);
  CHECK_THAT(r.out, Catch::Contains("| Oracle † |"));
  const std::string html = read_text(f.tmp / "table.html");
  CHECK_THAT(html, Catch::Contains("class=\"routing-plot\""));
  for (const char* m : {"phatgoose", "arrow", "average-activation"})
    CHECK(fs::exists(f.tmp / "table.routing" / m / "heldout-sentiment.svg"));
}

TEST_CASE("eval usage errors exit 2 and say what to do", "[cmd][eval]") {
  Fixture f;
  auto no_tasks = run_gaggle({"eval", "--base", (f.tmp / "base").string()});
  CHECK(no_tasks.exit_code == 2);
  CHECK_THAT(no_tasks.err, Catch::Contains("--tasks"));
  auto no_pool = run_gaggle({"eval", "--base", (f.tmp / "base").string(), "--routers", "phatgoose", "--tasks",
                             (f.tmp / "heldout").string()});
  CHECK(no_pool.exit_code == 2);
  CHECK_THAT(no_pool.err, Catch::Contains("--pool"));
  auto bad_router = run_gaggle({"eval", "--base", (f.tmp / "base").string(), "--pool", (f.tmp / "pool").string(),
                                "--routers", "telepathy", "--tasks", (f.tmp / "heldout").string()});
  CHECK(bad_router.exit_code == 2);
  CHECK_THAT(bad_router.err, Catch::Contains("telepathy"));
  auto missing = run_gaggle({"eval", "--base", (f.tmp / "base").string(), "--tasks", (f.tmp / "nope").string()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("nope"));
  auto help = run_gaggle({"eval", "--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("--single-experts"));
  CHECK_THAT(help.out, Catch::Contains("Example"));
}
