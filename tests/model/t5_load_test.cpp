// Loading and saving checkpoints: strictness, stored dtypes, shards, the fingerprint and
// inspect's description.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/dtype.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/base_info.h"
#include "model/fingerprint.h"
#include "model/stored_tensors.h"
#include "model/t5.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

const fs::path kV11 = test::data_dir() / "golden/t5-v1_1-tiny";
const fs::path kV10 = test::data_dir() / "golden/t5-v1_0-tiny";

fs::path copy_base(const test::TempDir& tmp, const fs::path& from, const std::string& name) {
  fs::path dir = tmp / name;
  fs::create_directories(dir);
  fs::copy_file(from / "config.json", dir / "config.json");
  return dir;
}

std::string t5_load_error(const fs::path& dir) {
  try {
    model::load_t5(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

at::Tensor golden_logits(model::T5ModelImpl& m) {
  c10::InferenceMode guard;
  at::Tensor ids = at::tensor(std::vector<std::int64_t>{5, 17, 33, 9, 1, 30, 31, 1}, at::kLong).view({2, 4});
  return m.forward(ids, at::ones({2, 4}, at::kLong), at::zeros({2, 2}, at::kLong));
}

}  // namespace

TEST_CASE("config.json parses with Hugging Face defaults", "[model][config]") {
  auto c = model::read_t5_config(kV10);
  CHECK(c.tie_word_embeddings);  // absent means true
  CHECK_FALSE(c.gated);
  CHECK(c.num_decoder_layers == 2);
  CHECK(c.relative_attention_max_distance == 20);
  auto c11 = model::read_t5_config(kV11);
  CHECK(c11.gated);
  CHECK_FALSE(c11.tie_word_embeddings);
  CHECK(c11.num_decoder_layers == 3);
  auto round = model::parse_t5_config(c11.to_json(), "round trip");
  CHECK(round.to_json() == c11.to_json());
  nlohmann::json j = {{"model_type", "t5"}, {"num_layers", 3}, {"feed_forward_proj", "gated-gelu"}};
  auto d = model::parse_t5_config(j, "x");
  CHECK(d.num_decoder_layers == 3);
  CHECK(d.d_model == 512);
  try {
    model::parse_t5_config({{"feed_forward_proj", "gated-silu"}}, "cfg.json");
    FAIL("gated-silu accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::unsupported);
    CHECK_THAT(e.what(), Catch::Contains("cfg.json") && Catch::Contains("gated-silu"));
  }
  CHECK_THROWS_AS(model::parse_t5_config({{"d_model", -4}}, "x"), Error);
  CHECK_THROWS_AS(model::parse_t5_config({{"model_type", "llama"}}, "x"), Error);
  // Every bad field: an invalid-input error naming the file and the field.
  const std::vector<std::pair<nlohmann::json, std::string>> bad = {
      {{{"vocab_size", "96"}}, "vocab_size"},
      {{{"d_model", 0}}, "d_model"},
      {{{"num_layers", 1000000000000}}, "num_layers"},  // bounded before anything loops over layers
      {{{"num_decoder_layers", 4097}}, "num_decoder_layers"},
      {{{"d_ff", 18446744073709551615ull}}, "d_ff"},
      {{{"layer_norm_epsilon", -1}}, "layer_norm_epsilon"},
      {{{"tie_word_embeddings", "yes"}}, "tie_word_embeddings"},
      {{{"feed_forward_proj", 3}}, "feed_forward_proj"},
      {{{"relative_attention_num_buckets", 2}}, "relative_attention_num_buckets"},
      {{{"pad_token_id", -1}}, "pad_token_id"},
      {{{"eos_token_id", nlohmann::json::array({"</s>"})}}, "eos_token_id"},
      {{{"decoder_start_token_id", 40000}}, "decoder_start_token_id"},
  };
  for (const auto& [config, field] : bad) {
    INFO(config.dump());
    try {
      model::parse_t5_config(config, "cfg.json");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::invalid);
      CHECK_THAT(e.what(), Catch::Contains("cfg.json") && Catch::Contains("'" + field + "'"));
    }
  }
  // eos_token_id as a list (newer configs): the first one counts.
  CHECK(model::parse_t5_config({{"eos_token_id", {5, 7}}}, "x").eos_token_id == 5);
}

TEST_CASE("loading is strict about tensor names and shapes", "[model][load]") {
  test::TempDir tmp;
  auto tensors = test::read_safetensors(kV11 / "model.safetensors");
  SECTION("a missing tensor is named") {
    auto dir = copy_base(tmp, kV11, "missing");
    auto t = tensors;
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& x) { return x.name == "decoder.block.2.layer.1.EncDecAttention.v.weight"; }), t.end());
    test::write_safetensors(t, dir / "model.safetensors");
    auto msg = t5_load_error(dir);
    CHECK_THAT(msg, Catch::Contains("missing tensor") && Catch::Contains("decoder.block.2.layer.1.EncDecAttention.v.weight"));
  }
  SECTION("an unexpected tensor is named") {
    auto dir = copy_base(tmp, kV11, "unexpected");
    auto t = tensors;
    t.push_back({"encoder.block.7.layer.0.SelfAttention.q.weight", io::DType::F32, {2, 2}, {1, 2, 3, 4}});
    test::write_safetensors(t, dir / "model.safetensors");
    CHECK_THAT(t5_load_error(dir), Catch::Contains("unexpected tensor") &&
                                       Catch::Contains("encoder.block.7.layer.0.SelfAttention.q.weight"));
  }
  SECTION("a wrong shape is named with both shapes") {
    auto dir = copy_base(tmp, kV11, "shape");
    auto t = tensors;
    for (auto& x : t)
      if (x.name == "encoder.final_layer_norm.weight") x.shape = {4, 8};
    test::write_safetensors(t, dir / "model.safetensors");
    CHECK_THAT(t5_load_error(dir), Catch::Contains("encoder.final_layer_norm.weight") && Catch::Contains("[4, 8]") &&
                                       Catch::Contains("[32]"));
  }
  SECTION("an untied config over tied weights misses lm_head") {
    auto dir = tmp / "tied-as-untied";
    fs::create_directories(dir);
    auto cfg = io::read_json_file(kV10 / "config.json");
    cfg["tie_word_embeddings"] = false;
    io::write_json_file_atomic(dir / "config.json", cfg);
    fs::copy_file(kV10 / "model.safetensors", dir / "model.safetensors");
    CHECK_THAT(t5_load_error(dir), Catch::Contains("lm_head.weight"));
  }
  SECTION("aliases of shared.weight are consumed only when equal") {
    auto dir = copy_base(tmp, kV10, "aliases");
    auto t = test::read_safetensors(kV10 / "model.safetensors");
    test::StoredTensor alias = *std::find_if(t.begin(), t.end(), [](auto& x) { return x.name == "shared.weight"; });
    alias.name = "encoder.embed_tokens.weight";
    t.push_back(alias);
    alias.name = "lm_head.weight";
    t.push_back(alias);
    test::write_safetensors(t, dir / "model.safetensors");
    CHECK(t5_load_error(dir).empty());
    t.back().values[3] += 1.0f;
    test::write_safetensors(t, dir / "model.safetensors");
    CHECK_THAT(t5_load_error(dir), Catch::Contains("lm_head.weight") && Catch::Contains("differs"));
  }
  SECTION("no weights, no config, tokenizer-only") {
    auto dir = copy_base(tmp, kV11, "empty");
    auto e = t5_load_error(dir);
    CHECK_THAT(e, Catch::Contains("model.safetensors"));
    CHECK_THAT(t5_load_error(tmp / "nothing"), Catch::Contains("config.json"));
  }
}

TEST_CASE("F16 and BF16 checkpoints load (converted to float32)", "[model][load]") {
  test::TempDir tmp;
  auto reference = model::load_t5(kV11);
  at::Tensor want = golden_logits(*reference);
  for (auto dtype : {io::DType::F16, io::DType::BF16}) {
    auto dir = copy_base(tmp, kV11, std::string(io::dtype_name(dtype)));
    auto t = test::read_safetensors(kV11 / "model.safetensors");
    for (std::size_t i = 0; i < t.size(); ++i)
      if (i % 2 == 0 || dtype == io::DType::BF16) t[i].dtype = dtype;  // F16 case: mixed F16 + F32
    test::write_safetensors(t, dir / "model.safetensors");
    auto m = model::load_t5(dir);
    // Every parameter equals the golden value rounded through the stored dtype.
    auto f = io::SafetensorsFile::open(dir / "model.safetensors");
    for (const auto& p : m->named_parameters()) {
      const auto& info = f.at(p.key());
      std::vector<float> v(info.numel());
      io::convert_to_f32(info.dtype, f.data(info), v.data(), v.size());
      CHECK(at::equal(p.value(), at::tensor(v).view(p.value().sizes())));
    }
    at::Tensor got = golden_logits(*m);
    double diff = (got - want).abs().max().item<double>();
    INFO(io::dtype_name(dtype) << " logits max diff " << diff);
    CHECK(diff < (dtype == io::DType::F16 ? 0.05 : 0.5));
    CHECK(diff > 0);
    CHECK(model::describe_base(dir).dtype == (dtype == io::DType::F16 ? "F16+F32" : "BF16"));
  }
}

TEST_CASE("sharded checkpoints load through model.safetensors.index.json", "[model][load]") {
  test::TempDir tmp;
  auto dir = copy_base(tmp, kV11, "sharded");
  auto t = test::read_safetensors(kV11 / "model.safetensors");
  std::vector<test::StoredTensor> a(t.begin(), t.begin() + t.size() / 2), b(t.begin() + t.size() / 2, t.end());
  test::write_safetensors(a, dir / "model-00001-of-00002.safetensors");
  test::write_safetensors(b, dir / "model-00002-of-00002.safetensors");
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& x : a) index["weight_map"][x.name] = "model-00001-of-00002.safetensors";
  for (const auto& x : b) index["weight_map"][x.name] = "model-00002-of-00002.safetensors";
  io::write_json_file_atomic(dir / "model.safetensors.index.json", index);
  auto m = model::load_t5(dir);
  auto ref = model::load_t5(kV11);
  CHECK(at::equal(golden_logits(*m), golden_logits(*ref)));
  // Same tensors, same fingerprint, however they are sharded.
  CHECK(model::base_fingerprint(dir) == model::base_fingerprint(kV11, {false}));
  index["weight_map"][a[0].name] = "model-00002-of-00002.safetensors";
  io::write_json_file_atomic(dir / "model.safetensors.index.json", index);
  CHECK_THAT(t5_load_error(dir), Catch::Contains(a[0].name));
  index["weight_map"][a[0].name] = "../elsewhere.safetensors";
  io::write_json_file_atomic(dir / "model.safetensors.index.json", index);
  CHECK_THAT(t5_load_error(dir), Catch::Contains("elsewhere"));
}

TEST_CASE("save_t5 writes a checkpoint that loads back identically", "[model][load]") {
  test::TempDir tmp;
  for (bool tied : {true, false}) {
    model::T5Config c;
    c.vocab_size = 40, c.d_model = 16, c.d_kv = 4, c.d_ff = 24, c.num_layers = 2, c.num_decoder_layers = 1;
    c.num_heads = 2, c.relative_attention_num_buckets = 8, c.relative_attention_max_distance = 12;
    c.gated = !tied, c.tie_word_embeddings = tied;
    at::manual_seed(7);
    auto m = model::make_t5(c);
    auto dir = tmp / (tied ? "tied" : "untied");
    model::save_t5(m, dir);
    auto f = io::SafetensorsFile::open(dir / "model.safetensors");
    CHECK((f.find("lm_head.weight") == nullptr) == tied);
    CHECK(f.find("encoder.embed_tokens.weight") == nullptr);
    auto back = model::load_t5(dir);
    CHECK(back->config().to_json() == c.to_json());
    CHECK(at::equal(golden_logits(*back), golden_logits(*m)));
    for (const auto& p : back->parameters()) CHECK_FALSE(p.requires_grad());  // frozen base
    auto trainable = model::load_t5(dir, {"cpu", true});
    for (const auto& p : trainable->parameters()) CHECK(p.requires_grad());
  }
}

TEST_CASE("save_t5 in BF16 stores each weight rounded to nearest even and says so in config.json", "[model][load]") {
  test::TempDir tmp;
  model::T5Config c;
  c.vocab_size = 40, c.d_model = 16, c.d_kv = 4, c.d_ff = 24, c.num_layers = 1, c.num_decoder_layers = 1;
  c.num_heads = 2, c.relative_attention_num_buckets = 8, c.relative_attention_max_distance = 12;
  at::manual_seed(11);
  auto m = model::make_t5(c);
  model::save_t5(m, tmp / "bf16", io::DType::BF16);
  auto f = io::SafetensorsFile::open(tmp / "bf16" / "model.safetensors");
  for (const auto& t : f.tensors()) CHECK(t.dtype == io::DType::BF16);
  CHECK(io::read_json_file(tmp / "bf16" / "config.json").at("torch_dtype") == "bfloat16");
  auto back = model::load_t5(tmp / "bf16");
  CHECK(back->config().to_json() == c.to_json());
  auto params = m->named_parameters();
  for (const auto& p : back->named_parameters()) {
    // Independent rounding: torch's own float -> bfloat16 cast (round to nearest even).
    at::Tensor expected = params[p.key()].detach().to(at::kBFloat16).to(at::kFloat);
    CHECK(at::equal(p.value(), expected));
  }
  CHECK_THROWS_WITH(model::save_t5(m, tmp / "i8", io::DType::I8), Catch::Contains("F32, BF16 or F16"));
}

TEST_CASE("the base fingerprint hashes names, shapes, dtypes and bytes, and is cached", "[model][fingerprint]") {
  test::TempDir tmp;
  auto dir = copy_base(tmp, kV11, "fp");
  fs::copy_file(kV11 / "model.safetensors", dir / "model.safetensors");
  std::string fp = model::base_fingerprint(dir);
  CHECK(fp.size() == 7 + 64);
  CHECK(fp.rfind("sha256:", 0) == 0);
  REQUIRE(fs::exists(dir / model::kFingerprintCacheName));
  CHECK(model::base_fingerprint(dir) == fp);
  CHECK(model::base_fingerprint(dir, {false}) == fp);
  CHECK(model::base_fingerprint(kV10, {false}) != fp);
  // A forged cache entry is believed only while the files are unchanged: prove the cache is read...
  auto cache = io::read_json_file(dir / model::kFingerprintCacheName);
  cache["fingerprint"] = "sha256:" + std::string(64, 'a');
  io::write_json_file_atomic(dir / model::kFingerprintCacheName, cache);
  CHECK(model::base_fingerprint(dir) == "sha256:" + std::string(64, 'a'));
  // ...and that changing one byte of one tensor (new file, new size/mtime key) rehashes.
  auto t = test::read_safetensors(kV11 / "model.safetensors");
  t[5].values[0] += 1.0f;
  test::write_safetensors(t, dir / "model.safetensors");
  std::string changed = model::base_fingerprint(dir);
  CHECK(changed != fp);
  CHECK(changed != "sha256:" + std::string(64, 'a'));
  // Same values stored as another dtype: another fingerprint.
  for (auto& x : t) x.dtype = io::DType::BF16;
  test::write_safetensors(t, dir / "model.safetensors");
  CHECK(model::base_fingerprint(dir) != changed);
}

TEST_CASE("describe_base summarises a base model without loading it", "[model][inspect]") {
  test::TempDir tmp;
  auto dir = copy_base(tmp, kV11, "described");  // the fingerprint cache is written beside it
  fs::copy_file(kV11 / "model.safetensors", dir / "model.safetensors");
  auto info = model::describe_base(dir);
  CHECK(info.config.gated);
  CHECK(info.dtype == "F32");
  CHECK(info.linears.size() == 2 * 7 + 3 * 11);
  CHECK(info.linears[0].name == "encoder.block.0.layer.0.SelfAttention.q");
  CHECK(info.linears[0].d_out == 32);
  auto m = model::load_t5(kV11);
  CHECK(info.num_parameters == m->num_parameters());
  CHECK(info.fingerprint == model::base_fingerprint(kV11, {false}));
  CHECK(fs::exists(dir / model::kFingerprintCacheName));
  auto j = info.to_json();
  CHECK(j["linear_modules"].size() == info.linears.size());
  CHECK(model::is_base_dir(kV10));
  CHECK_FALSE(model::is_base_dir(test::data_dir()));
}
