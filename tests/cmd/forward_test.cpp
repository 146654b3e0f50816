// gaggle debug forward (the conformance runner) and gaggle inspect BASE_DIR, run as the
// built binary against the golden outputs: Hugging Face's (T5, Llama) and llama2.c's.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

double max_abs_diff(const json& want, const json& got, int& mismatched_ints) {
  if (want.is_array()) {
    if (!got.is_array() || got.size() != want.size()) return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < want.size(); ++i) m = std::max(m, max_abs_diff(want[i], got[i], mismatched_ints));
    return m;
  }
  if (want.is_number_integer()) {
    if (!got.is_number_integer() || got.get<std::int64_t>() != want.get<std::int64_t>()) ++mismatched_ints;
    return 0;
  }
  if (!got.is_number()) return INFINITY;
  return std::abs(got.get<double>() - want.get<double>());
}

fs::path copy_golden(const TempDir& tmp, const std::string& name) {
  fs::path dir = tmp / name;
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(data_dir() / "golden" / name / f, dir / f);
  return dir;
}

}  // namespace

TEST_CASE("debug forward reproduces Hugging Face's golden outputs", "[cmd][forward]") {
  auto name = GENERATE(as<std::string>{}, "t5-v1_0-tiny", "t5-v1_1-tiny");
  TempDir tmp;
  const fs::path golden = data_dir() / "golden" / name;
  auto r = run_gaggle({"debug", "forward", "--base", golden.string(), "--case", (golden / "case.json").string(), "--out",
                       (tmp / "out.json").string(), "--threads", "1"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());
  auto want = json::parse(read_text(golden / "case.json"));
  auto got = json::parse(read_text(tmp / "out.json"));
  for (auto [a, b] : {std::pair{"encoder_last_hidden_state", ""}, {"logits", ""}, {"label_nll_mean", ""},
                      {"rank_classification", "nll_mean"}, {"greedy", "output_ids_ignore_eos"}, {"greedy", "output_ids"}}) {
    const json& w = *b ? want[a][b] : want[a];
    const json& g = *b ? got[a][b] : got[a];
    int bad_ints = 0;
    double d = max_abs_diff(w, g, bad_ints);
    INFO(name << " " << a << " " << b << ": max abs diff " << d);
    CHECK(d <= 1e-4);
    CHECK(bad_ints == 0);
  }
}

TEST_CASE("debug forward takes partial cases and reports bad ones", "[cmd][forward]") {
  TempDir tmp;
  const fs::path base = data_dir() / "golden/t5-v1_1-tiny";
  write_text(tmp / "case.json", R"({"input_ids": [[5, 6, 1]], "greedy": {"max_new_tokens": 3}})");
  auto r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "case.json").string(), "--out", "-"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto got = json::parse(r.out);
  CHECK(got["encoder_last_hidden_state"].size() == 1);
  CHECK(got["greedy"]["output_ids_ignore_eos"][0].size() == 4);
  CHECK_FALSE(got.contains("logits"));

  write_text(tmp / "bad.json", R"({"input_ids": [[5, 6, 1], [7]]})");
  r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "bad.json").string(), "--out", "-"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("bad.json") && Catch::Contains("input_ids"));
  write_text(tmp / "oov.json", R"({"input_ids": [[5, 600, 1]]})");
  r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "oov.json").string(), "--out", "-"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("vocabulary"));
  r = run_gaggle({"debug", "forward", "--base", (tmp / "nope").string(), "--case", (tmp / "case.json").string(), "--out", "-"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("nope") && Catch::Contains("config.json"));
  r = run_gaggle({"debug", "forward", "--base", base.string()});
  CHECK(r.exit_code == 2);
  r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "case.json").string(), "--out", "-",
                  "--device", "tpu"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("tpu"));
  r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "case.json").string(), "--out", "-",
                  "--device", "cuda"});
  if (r.exit_code != 0) {  // CPU-only LibTorch or no GPU: a clear refusal, not a crash
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("CUDA is not available"));
  }
}

TEST_CASE("inspect describes a base model directory", "[cmd][inspect]") {
  TempDir tmp;
  auto dir = copy_golden(tmp, "t5-v1_1-tiny");
  auto r = run_gaggle({"inspect", dir.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("gated-gelu") && Catch::Contains("untied"));
  CHECK_THAT(r.out, Catch::Contains("fingerprint:   sha256:"));
  CHECK_THAT(r.out, Catch::Contains("decoder.block.2.layer.1.EncDecAttention.o"));
  CHECK_THAT(r.out, Catch::Contains("47 linear modules"));
  CHECK(fs::exists(dir / ".gaggle-fingerprint.json"));  // cached beside the checkpoint
  auto j = run_gaggle({"inspect", "--json", dir.string()});
  REQUIRE(j.exit_code == 0);
  auto info = json::parse(j.out);
  CHECK(info["dtype"] == "F32");
  CHECK(info["config"]["num_decoder_layers"] == 3);
  CHECK(info["linear_modules"].size() == 47);
  CHECK(info["fingerprint"].get<std::string>().rfind("sha256:", 0) == 0);
  auto tied = run_gaggle({"inspect", "--json", copy_golden(tmp, "t5-v1_0-tiny").string()});
  REQUIRE(tied.exit_code == 0);
  CHECK(json::parse(tied.out)["fingerprint"] != info["fingerprint"]);
  // A directory without config.json is still refused clearly.
  auto r2 = run_gaggle({"inspect", tmp.path().string()});
  CHECK(r2.exit_code == 2);
  CHECK_THAT(r2.err, Catch::Contains("config.json"));
}

TEST_CASE("debug forward turns LibTorch errors into one clean line", "[cmd][forward]") {
  TempDir tmp;
  const fs::path base = data_dir() / "golden/t5-v1_0-tiny";
  write_text(tmp / "case.json", R"({"input_ids": [[5, 6, 1]], "labels": [[]]})");  // no label positions
  auto r = run_gaggle({"debug", "forward", "--base", base.string(), "--case", (tmp / "case.json").string(), "--out", "-"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: ") && Catch::Contains("case.json"));
  CHECK_THAT(r.err, !Catch::Contains("frame #"));
}

TEST_CASE("debug forward reproduces the Llama references", "[cmd][forward]") {
  TempDir tmp;
  // Hugging Face's LlamaForCausalLM: logits at the real positions, greedy ids exact.
  const fs::path tiny = data_dir() / "golden/llama-tiny";
  auto r = run_gaggle({"debug", "forward", "--base", tiny.string(), "--case", (tiny / "case.json").string(), "--out",
                       (tmp / "tiny.json").string(), "--threads", "1"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto want = json::parse(read_text(tiny / "case.json"));
  auto got = json::parse(read_text(tmp / "tiny.json"));
  int bad_ints = 0;
  double d = 0;
  for (std::size_t b = 0; b < want["logits"].size(); ++b)
    for (std::size_t s = 0; s < want["logits"][b].size(); ++s)
      if (want["attention_mask"][b][s] == 1) d = std::max(d, max_abs_diff(want["logits"][b][s], got["logits"][b][s], bad_ints));
  INFO("llama-tiny logits max abs diff " << d);
  CHECK(d <= 1e-4);
  CHECK(got["greedy"]["new_tokens"] == want["greedy"]["new_tokens"]);
  CHECK(got["greedy"]["new_tokens_ignore_eos"] == want["greedy"]["new_tokens_ignore_eos"]);

  // llama2.c's run.c: the checkpoint converted to Hugging Face's layout first.
  r = run_gaggle({"debug", "convert", "--from", "llama2c", (data_dir() / "llama-stories260k/stories260K.bin").string(),
                  "--out", (tmp / "stories").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("8/4 heads") && Catch::Contains("shared classifier"));
  CHECK(fs::exists(tmp / "stories/config.json"));
  const fs::path golden = data_dir() / "golden/llama-stories260k/case.json";
  r = run_gaggle({"debug", "forward", "--base", (tmp / "stories").string(), "--case", golden.string(), "--out",
                  (tmp / "stories.json").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  want = json::parse(read_text(golden));
  got = json::parse(read_text(tmp / "stories.json"));
  REQUIRE(got["cases"].size() == want["cases"].size());
  for (std::size_t i = 0; i < want["cases"].size(); ++i) {
    const json& w = want["cases"][i];
    const json& g = got["cases"][i];
    double di = max_abs_diff(w["logits"], g["logits"], bad_ints);
    INFO(w["name"] << " logits max abs diff " << di);
    CHECK(di <= 1e-4);
    CHECK(g[w.contains("argmax") ? "argmax" : "generated_ids"] == w[w.contains("argmax") ? "argmax" : "generated_ids"]);
  }
  CHECK(bad_ints == 0);

  // A malformed Llama config is refused naming the file and the field.
  fs::create_directories(tmp / "bad");
  fs::copy_file(tiny / "model.safetensors", tmp / "bad/model.safetensors");
  auto config = json::parse(read_text(tiny / "config.json"));
  config["num_key_value_heads"] = 3;
  write_text(tmp / "bad/config.json", config.dump());
  r = run_gaggle({"debug", "forward", "--base", (tmp / "bad").string(), "--case", (tiny / "case.json").string(), "--out", "-"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("config.json") && Catch::Contains("num_key_value_heads"));
}

TEST_CASE("inspect describes a Llama base directory", "[cmd][inspect]") {
  TempDir tmp;
  auto dir = copy_golden(tmp, "llama-tiny");
  auto r = run_gaggle({"inspect", dir.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Llama decoder-only") && Catch::Contains("2 key-value heads") && Catch::Contains("untied"));
  CHECK_THAT(r.out, Catch::Contains("model.layers.1.mlp.down_proj"));
  CHECK_THAT(r.out, Catch::Contains("14 linear modules"));
  auto j = run_gaggle({"inspect", "--json", dir.string()});
  REQUIRE(j.exit_code == 0);
  auto info = json::parse(j.out);
  CHECK(info["config"]["model_type"] == "llama");
  CHECK(info["config"]["num_key_value_heads"] == 2);
  CHECK(info["linear_modules"].size() == 14);
  CHECK(info["linear_modules"][1]["name"] == "model.layers.0.self_attn.k_proj");
  CHECK(info["linear_modules"][1]["d_out"] == 16);
  CHECK(info["linear_modules"][1]["d_in"] == 32);
}
