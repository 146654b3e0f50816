// The Llama model against its two references (tests/data/golden, golden/README.md):
// Hugging Face transformers' LlamaForCausalLM (llama-tiny) and llama2.c's run.c
// (llama-stories260k, through the llama2.c -> Hugging Face conversion).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "io/error.h"
#include "io/json_file.h"
#include "io/llama2c_checkpoint.h"
#include "model/conformance.h"
#include "model/llama.h"
#include "support/test_devices.h"
#include "support/test_support.h"

using namespace gaggle;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Largest |want - got| over two nested float lists of the same shape (infinity if not).
double max_diff(const json& want, const json& got) {
  if (want.is_array()) {
    if (!got.is_array() || got.size() != want.size()) return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < want.size(); ++i) m = std::max(m, max_diff(want[i], got[i]));
    return m;
  }
  return got.is_number() ? std::abs(got.get<double>() - want.get<double>()) : INFINITY;
}

}  // namespace

TEST_CASE("Llama matches Hugging Face on llama-tiny", "[model][llama]") {
  const fs::path dir = test::data_dir() / "golden/llama-tiny";
  auto device = GENERATE(from_range(test::test_devices()));
  INFO("device " << device);
  auto model = model::load_llama(dir, {device});
  CHECK(model->config().num_key_value_heads == 2);
  const json want = io::read_json_file(dir / "case.json");
  const json got = model::run_llama_case(*model, want, "llama-tiny");
  // Real positions (attention_mask 1) within 1e-4; the pad rows too, given position_ids.
  double real = 0;
  for (std::size_t b = 0; b < want["logits"].size(); ++b)
    for (std::size_t s = 0; s < want["logits"][b].size(); ++s)
      if (want["attention_mask"][b][s] == 1) real = std::max(real, max_diff(want["logits"][b][s], got["logits"][b][s]));
  INFO("llama-tiny logits max abs diff " << real);
  CHECK(real <= 1e-4);
  CHECK(max_diff(want["logits"], got["logits"]) <= 1e-4);
  CHECK(got["greedy"]["new_tokens"] == want["greedy"]["new_tokens"]);
  CHECK(got["greedy"]["new_tokens_ignore_eos"] == want["greedy"]["new_tokens_ignore_eos"]);
}

TEST_CASE("Llama matches llama2.c's run.c on stories260K after conversion", "[model][llama]") {
  auto device = GENERATE(from_range(test::test_devices()));
  INFO("device " << device);
  test::TempDir tmp;
  auto header = io::convert_llama2c_to_hf(test::data_dir() / "llama-stories260k/stories260K.bin", tmp / "hf");
  CHECK(header.shared_classifier);
  CHECK(header.n_kv_heads == 4);
  auto model = model::load_llama(tmp / "hf", {device});
  CHECK(model->config().tie_word_embeddings);
  const json want = io::read_json_file(test::data_dir() / "golden/llama-stories260k/case.json");
  const json got = model::run_llama_case(*model, want, "llama-stories260k");
  REQUIRE(got["cases"].size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const json& w = want["cases"][i];
    const json& g = got["cases"][i];
    double d = max_diff(w["logits"], g["logits"]);
    INFO(w["name"] << " logits max abs diff " << d);
    CHECK(d <= 1e-4);
    if (w.contains("argmax")) CHECK(g["argmax"] == w["argmax"]);
    if (w.contains("generated_ids")) {
      CHECK(g["generated_ids"] == w["generated_ids"]);
      CHECK(g["input_ids"] == w["input_ids"]);
    }
  }
}

TEST_CASE("llama2.c conversion refuses what it cannot read", "[model][llama]") {
  test::TempDir tmp;
  auto error_of = [&](const std::string& bytes) {
    test::write_text(tmp / "x.bin", bytes);
    try {
      io::convert_llama2c_to_hf(tmp / "x.bin", tmp / "out");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error_of("abc"), Catch::Contains("x.bin") && Catch::Contains("header"));
  CHECK_THAT(error_of(std::string("42ka\x01\0\0\0", 8) + std::string(248, '\0')), Catch::Contains("version 1"));
  std::string whole = test::read_text(test::data_dir() / "llama-stories260k/stories260K.bin");
  CHECK_THAT(error_of(whole.substr(0, whole.size() - 4)), Catch::Contains("implies 1056540"));
  std::string odd = whole;
  std::int32_t heads = 7;  // 64 is not a multiple of 7
  std::memcpy(odd.data() + 12, &heads, 4);
  CHECK_THAT(error_of(odd), Catch::Contains("n_heads"));
  CHECK_FALSE(fs::exists(tmp / "out" / "config.json"));
}
