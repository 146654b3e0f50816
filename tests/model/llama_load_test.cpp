// The Llama model on tiny models made here: stored dtypes, shards and tying, rotary
// scaling and grouped-query attention against a hand computation, config errors, the
// adapter hook, padding and the KV cache.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "io/dtype.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/base_info.h"
#include "model/llama.h"
#include "model/stored_tensors.h"
#include "support/test_support.h"

using namespace gaggle;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

model::LlamaConfig tiny_config(std::int64_t heads = 4, std::int64_t kv_heads = 2, bool tied = false) {
  model::LlamaConfig c;
  c.vocab_size = 50, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 2;
  c.num_attention_heads = heads, c.num_key_value_heads = kv_heads, c.head_dim = 32 / heads;
  c.max_position_embeddings = 64, c.rms_norm_eps = 1e-6, c.tie_word_embeddings = tied;
  return c;
}

// Weights large enough (std 0.3) that every path moves the logits.
model::LlamaModel tiny_model(const model::LlamaConfig& c, std::uint64_t seed = 1) {
  at::manual_seed(seed);
  auto m = model::make_llama(c, 0.3);
  at::NoGradGuard no_grad;
  for (auto& p : m->named_parameters())
    if (p.key().find("norm") != std::string::npos) p.value().uniform_(0.5, 1.5);  // norms matter too
  return m;
}

at::Tensor sample_ids() {
  return at::tensor(std::vector<std::int64_t>{1, 7, 33, 9, 21, 4, 48, 12, 1, 30, 31, 2, 5, 17, 0, 44}, at::kLong).view({2, 8});
}

at::Tensor logits_of(model::LlamaModelImpl& m, const at::Tensor& ids = sample_ids()) {
  c10::InferenceMode guard;
  return m.forward(ids);
}

// A straightforward float64 Llama forward of one unpadded sequence, head by head, written
// from the formulas (golden/README.md "Llama"): the reference for RoPE scaling and GQA.
at::Tensor hand_forward(model::LlamaModelImpl& m, const at::Tensor& ids) {
  const auto& c = m.config();
  std::map<std::string, at::Tensor> p;
  for (const auto& item : m.named_parameters()) p[item.key()] = item.value().detach().to(at::kDouble);
  auto rms = [&](const at::Tensor& x, const at::Tensor& w) { return w * x / at::sqrt(x.pow(2).mean(-1, true) + c.rms_norm_eps); };
  const std::int64_t len = ids.size(0), hd = c.head_dim, half = hd / 2;
  const std::int64_t group = c.num_attention_heads / c.num_key_value_heads;
  // rotate (j, j + hd/2) by angle (pos / factor) * theta^(-2j/hd)
  auto rope = [&](const at::Tensor& x) {  // x [len, hd]
    at::Tensor out = x.clone();
    for (std::int64_t t = 0; t < len; ++t)
      for (std::int64_t j = 0; j < half; ++j) {
        const double angle = (static_cast<double>(t) / c.rope_linear_factor) * std::pow(c.rope_theta, -2.0 * j / hd);
        const double a = x[t][j].item<double>(), b = x[t][j + half].item<double>();
        out[t][j] = a * std::cos(angle) - b * std::sin(angle);
        out[t][j + half] = b * std::cos(angle) + a * std::sin(angle);
      }
    return out;
  };
  at::Tensor h = p.at("model.embed_tokens.weight").index_select(0, ids);
  at::Tensor causal = at::ones({len, len}, at::kBool).tril();
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    at::Tensor x = rms(h, p.at(pre + "input_layernorm.weight"));
    at::Tensor q = at::matmul(x, p.at(pre + "self_attn.q_proj.weight").t());
    at::Tensor k = at::matmul(x, p.at(pre + "self_attn.k_proj.weight").t());
    at::Tensor v = at::matmul(x, p.at(pre + "self_attn.v_proj.weight").t());
    std::vector<at::Tensor> heads;
    for (std::int64_t head = 0; head < c.num_attention_heads; ++head) {
      const std::int64_t kvh = head / group;  // consecutive query heads share one key/value head
      at::Tensor qh = rope(q.slice(1, head * hd, (head + 1) * hd));
      at::Tensor kh = rope(k.slice(1, kvh * hd, (kvh + 1) * hd));
      at::Tensor vh = v.slice(1, kvh * hd, (kvh + 1) * hd);
      at::Tensor s = at::matmul(qh, kh.t()) / std::sqrt(static_cast<double>(hd));
      s = s.masked_fill(causal.logical_not(), -INFINITY);
      heads.push_back(at::matmul(at::softmax(s, -1), vh));
    }
    h = h + at::matmul(at::cat(heads, 1), p.at(pre + "self_attn.o_proj.weight").t());
    x = rms(h, p.at(pre + "post_attention_layernorm.weight"));
    at::Tensor gate = at::matmul(x, p.at(pre + "mlp.gate_proj.weight").t());
    at::Tensor up = at::matmul(x, p.at(pre + "mlp.up_proj.weight").t());
    h = h + at::matmul(gate * at::sigmoid(gate) * up, p.at(pre + "mlp.down_proj.weight").t());
  }
  h = rms(h, p.at("model.norm.weight"));
  return at::matmul(h, (c.tie_word_embeddings ? p.at("model.embed_tokens.weight") : p.at("lm_head.weight")).t());
}

// The tensors written as one file, every one stored as `dtype`.
void write_shard(std::vector<test::StoredTensor> tensors, io::DType dtype, const fs::path& file) {
  for (auto& t : tensors) t.dtype = dtype;
  test::write_safetensors(tensors, file);
}

// The model's tensors as `shards` files in `dtype`, with model.safetensors.index.json.
void write_sharded(const std::vector<test::StoredTensor>& all, io::DType dtype, int shards, const fs::path& dir) {
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (int s = 0; s < shards; ++s) {
    std::vector<test::StoredTensor> part;
    for (std::size_t i = s; i < all.size(); i += shards) part.push_back(all[i]);
    const std::string file = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    write_shard(part, dtype, dir / file);
    for (const auto& t : part) index["weight_map"][t.name] = file;
  }
  io::write_json_file_atomic(dir / "model.safetensors.index.json", index);
}

std::string llama_load_error(const fs::path& dir) {
  try {
    model::load_llama(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Llama checkpoints load from F16, BF16, shards, tied and untied", "[model][llama]") {
  test::TempDir tmp;
  for (bool tied : {false, true}) {
    auto m = tiny_model(tiny_config(4, 2, tied));
    const fs::path f32 = tmp / (tied ? "tied-f32" : "untied-f32");
    model::save_llama(m, f32);
    CHECK((io::SafetensorsFile::open(f32 / "model.safetensors").find("lm_head.weight") == nullptr) == tied);
    auto back = model::load_llama(f32);
    CHECK(back->config().to_json() == m->config().to_json());
    at::Tensor want = logits_of(*m);
    CHECK(at::equal(logits_of(*back), want));
    for (const auto& p : back->parameters()) CHECK_FALSE(p.requires_grad());
    auto all = test::read_safetensors(f32 / "model.safetensors");
    for (auto [dtype, shards, tol] : {std::tuple{io::DType::F32, 3, 0.0}, std::tuple{io::DType::F16, 2, 0.05},
                                      std::tuple{io::DType::BF16, 1, 0.5}}) {
      const fs::path dir = tmp / ((tied ? "tied-" : "untied-") + std::string(io::dtype_name(dtype)) + "-" + std::to_string(shards));
      fs::create_directories(dir);
      fs::copy_file(f32 / "config.json", dir / "config.json");
      write_sharded(all, dtype, shards, dir);
      auto loaded = model::load_llama(dir);
      // Every parameter is the F32 value rounded through the stored dtype...
      for (const auto& t : all) {
        std::vector<float> rounded = t.values;
        for (float& v : rounded)
          if (dtype != io::DType::F32)
            v = dtype == io::DType::F16 ? io::f16_bits_to_f32(io::f32_to_f16_bits(v)) : io::bf16_bits_to_f32(io::f32_to_bf16_bits(v));
        CHECK(at::equal(loaded->named_parameters()[t.name], at::tensor(rounded).view(t.shape)));
      }
      // ...and the logits follow within the dtype's precision.
      double diff = (logits_of(*loaded) - want).abs().max().item<double>();
      INFO((tied ? "tied " : "untied ") << io::dtype_name(dtype) << " x" << shards << ": logits max diff " << diff);
      CHECK(diff <= tol);
      CHECK(model::describe_base(dir).dtype == std::string(io::dtype_name(dtype)));
      CHECK(model::describe_base(dir).num_parameters == m->num_parameters());
    }
  }
}

TEST_CASE("Llama loading is strict and names the file and the tensor", "[model][llama]") {
  test::TempDir tmp;
  auto m = tiny_model(tiny_config(4, 2, true));
  model::save_llama(m, tmp / "base");
  auto all = test::read_safetensors(tmp / "base/model.safetensors");
  auto variant = [&](const std::string& name, std::vector<test::StoredTensor> tensors) {
    fs::path dir = tmp / name;
    fs::create_directories(dir);
    fs::copy_file(tmp / "base/config.json", dir / "config.json");
    write_shard(tensors, io::DType::F32, dir / "model.safetensors");
    return dir;
  };
  // A tied checkpoint may store lm_head.weight: equal to the embedding, it is accepted...
  auto with_head = all;
  for (const auto& t : all)
    if (t.name == "model.embed_tokens.weight")
      with_head.push_back({"lm_head.weight", io::DType::F32, t.shape, t.values});
  CHECK(llama_load_error(variant("alias", with_head)).empty());
  with_head.back().values[0] += 1;  // ...different, it is refused with the fix.
  CHECK_THAT(llama_load_error(variant("alias-differs", with_head)),
             Catch::Contains("lm_head.weight") && Catch::Contains("differs"));
  // Older conversions saved the rotary inv_freq buffers: ignored.
  auto with_inv_freq = all;
  with_inv_freq.push_back(
      {"model.layers.0.self_attn.rotary_emb.inv_freq", io::DType::F32, {4}, {1, 0.1f, 0.01f, 0.001f}});
  CHECK(llama_load_error(variant("inv-freq", with_inv_freq)).empty());
  CHECK(model::describe_base(tmp / "inv-freq").linears.size() == 14);
  auto missing = all;
  missing.erase(
      std::remove_if(missing.begin(), missing.end(),
                     [](const test::StoredTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; }),
      missing.end());
  CHECK_THAT(llama_load_error(variant("missing", missing)),
             Catch::Contains("model.safetensors") && Catch::Contains("model.layers.1.mlp.up_proj.weight"));
  auto extra = all;
  extra.push_back({"model.layers.2.mlp.up_proj.weight", io::DType::F32, {1}, {0}});
  CHECK_THAT(llama_load_error(variant("extra", extra)),
             Catch::Contains("unexpected") && Catch::Contains("model.layers.2.mlp.up_proj.weight"));
  auto shape = all;
  for (auto& t : shape)
    if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {8, 64}, t.values.resize(8 * 64);  // kv heads x head_dim wrong
  CHECK_THAT(llama_load_error(variant("shape", shape)),
             Catch::Contains("k_proj.weight") && Catch::Contains("[16, 32]"));
}

TEST_CASE("Llama config.json errors name the file and the field", "[model][llama]") {
  test::TempDir tmp;
  const json good = tiny_config().to_json();
  struct Bad {
    std::function<void(json&)> edit;
    std::string field;
    ErrorCode code;
  };
  std::vector<Bad> cases = {
      {[](json& j) { j["num_key_value_heads"] = 3; }, "num_key_value_heads", ErrorCode::invalid},
      {[](json& j) { j["hidden_size"] = 30; }, "hidden_size", ErrorCode::invalid},
      {[](json& j) { j["vocab_size"] = "96"; }, "vocab_size", ErrorCode::invalid},
      {[](json& j) { j["num_hidden_layers"] = 0; }, "num_hidden_layers", ErrorCode::invalid},
      // Implausible sizes are errors before anything loops over them (10^12 layers hung).
      {[](json& j) { j["num_hidden_layers"] = 1000000000000; }, "must be at most 4096", ErrorCode::invalid},
      {[](json& j) { j["max_position_embeddings"] = 18446744073709551615ull; }, "at most 16777216", ErrorCode::invalid},
      {[](json& j) { j["rms_norm_eps"] = -1; }, "rms_norm_eps", ErrorCode::invalid},
      {[](json& j) { j["rope_theta"] = "big"; }, "rope_theta", ErrorCode::invalid},
      {[](json& j) { j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}}; }, "dynamic", ErrorCode::unsupported},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, "yarn", ErrorCode::unsupported},
      {[](json& j) { j["rope_scaling"] = {{"type", "linear"}}; }, "rope_scaling.factor", ErrorCode::invalid},
      {[](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 0}}; }, "rope_scaling.factor", ErrorCode::invalid},
      {[](json& j) { j["rope_scaling"] = "linear"; }, "rope_scaling", ErrorCode::invalid},
      {[](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act", ErrorCode::unsupported},
      {[](json& j) { j["attention_bias"] = true; }, "attention_bias", ErrorCode::unsupported},
      {[](json& j) { j["tie_word_embeddings"] = "yes"; }, "tie_word_embeddings", ErrorCode::invalid},
      {[](json& j) { j["eos_token_id"] = 500; }, "eos_token_id", ErrorCode::invalid},
      {[](json& j) { j["head_dim"] = 7; }, "head dimension", ErrorCode::invalid},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    json j = good;
    cases[i].edit(j);
    fs::path dir = tmp / ("bad" + std::to_string(i));
    fs::create_directories(dir);
    io::write_json_file_atomic(dir / "config.json", j);
    INFO(j.dump());
    try {
      model::read_llama_config(dir);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains((dir / "config.json").string()) && Catch::Contains(cases[i].field));
      CHECK(e.code() == cases[i].code);
    }
  }
  // Another model_type is not read as Llama, and the architecture probe refuses it by name.
  json mistral = good;
  mistral["model_type"] = "mistral";
  io::write_json_file_atomic(tmp / "config.json", mistral);
  CHECK_THROWS_WITH(model::read_llama_config(tmp.path()), Catch::Contains("mistral"));
  CHECK_THROWS_WITH(model::read_architecture(tmp.path()), Catch::Contains("mistral") && Catch::Contains("config.json"));
  // Defaults are HF's: no num_key_value_heads means one per query head; rope_scaling linear parses.
  json plain = good;
  plain.erase("num_key_value_heads");
  plain["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  auto c = model::parse_llama_config(plain, "plain");
  CHECK(c.num_key_value_heads == c.num_attention_heads);
  CHECK(c.rope_linear_factor == 4.0);
  CHECK(model::parse_llama_config(c.to_json(), "round trip").to_json() == c.to_json());
}

TEST_CASE("Llama GQA and linear RoPE scaling equal a hand computation", "[model][llama]") {
  const at::Tensor ids = at::tensor(std::vector<std::int64_t>{1, 7, 33, 9, 21, 4, 48, 12, 3, 30, 31}, at::kLong);
  for (auto [heads, kv_heads] : {std::pair{4, 4}, std::pair{4, 2}, std::pair{8, 2}, std::pair{4, 1}}) {
    for (double factor : {1.0, 2.0, 3.5}) {
      auto c = tiny_config(heads, kv_heads);
      c.rope_linear_factor = factor;
      c.rope_theta = factor == 1.0 ? 10000.0 : 500.0;
      auto m = tiny_model(c, 3);
      at::Tensor got = logits_of(*m, ids.unsqueeze(0))[0].to(at::kDouble);
      at::Tensor want = hand_forward(*m, ids);
      double diff = (got - want).abs().max().item<double>();
      INFO(heads << "/" << kv_heads << " heads, linear factor " << factor << ": max abs diff " << diff);
      CHECK(diff <= 1e-4);
      if (factor != 1.0) {  // and the scaling does move the logits (same seed, same weights)
        auto unscaled_config = c;
        unscaled_config.rope_linear_factor = 1.0;
        auto unscaled = tiny_model(unscaled_config, 3);
        CHECK((logits_of(*unscaled, ids.unsqueeze(0))[0].to(at::kDouble) - got).abs().max().item<double>() > 1e-3);
      }
    }
  }
}

namespace {

// Records what the model tells and hands an adapter; adds `shift` to the layer output.
class ProbeAdapter : public model::LinearAdapter {
 public:
  explicit ProbeAdapter(double shift_) : shift(shift_) {}
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override {
    last_u_sizes = u.sizes().vec();
    ++calls;
    return base_out + shift;
  }
  void set_tokens(const model::TokenContext& context) override { last = context; }
  double shift;
  int calls = 0;
  std::vector<std::int64_t> last_u_sizes;
  model::TokenContext last;
};

}  // namespace

TEST_CASE("adapters attach to Llama linears by Hugging Face module path", "[model][llama]") {
  auto m = tiny_model(tiny_config(4, 2));
  const auto names = m->linear_names();
  REQUIRE(names.size() == 14);
  CHECK(names.front() == "model.layers.0.self_attn.q_proj");
  CHECK(names.back() == "model.layers.1.mlp.down_proj");
  CHECK(m->linear_weight("model.layers.0.self_attn.k_proj").sizes() == at::IntArrayRef({16, 32}));
  const at::Tensor base = logits_of(*m);
  for (const auto& name : {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.0.mlp.down_proj"}) {
    auto probe = std::make_shared<ProbeAdapter>(0.5);
    m->set_adapter(name, probe);
    CHECK(m->adapter(name) == probe);
    at::Tensor mask = at::ones({2, 8}, at::kLong);
    mask[1].slice(0, 5).fill_(0);
    at::Tensor adapted;
    {
      c10::InferenceMode guard;
      adapted = m->forward(sample_ids(), mask);
    }
    INFO(name);
    CHECK(probe->calls == 1);
    CHECK(probe->last_u_sizes[0] == 2);
    CHECK(probe->last_u_sizes[1] == 8);
    CHECK(probe->last.phase == model::TokenContext::Phase::decoder);
    CHECK(probe->last.causal);
    CHECK(probe->last.offset == 0);
    CHECK(at::equal(probe->last.mask, mask));
    CHECK((adapted - base).abs().max().item<double>() > 1e-3);  // the hook is on the forward path
    m->set_adapter(name, nullptr);
    CHECK(at::equal(logits_of(*m), base));
  }
  // An identity adapter leaves the logits alone; clear_adapters detaches everything.
  for (const auto& name : names) m->set_adapter(name, std::make_shared<ProbeAdapter>(0.0));
  CHECK(at::equal(logits_of(*m), base));
  m->clear_adapters();
  for (const auto& name : names) CHECK(m->adapter(name) == nullptr);
  CHECK_THROWS_WITH(m->set_adapter("lm_head", nullptr), Catch::Contains("'lm_head'"));  // never adapted
  CHECK_THROWS_AS(m->linear_weight("model.layers.9.mlp.up_proj"), Error);
}

TEST_CASE("a right-padded Llama batch equals each sequence alone", "[model][llama]") {
  auto m = tiny_model(tiny_config(4, 2));
  c10::InferenceMode guard;
  const std::vector<std::vector<std::int64_t>> rows = {{1, 7, 33, 9, 21, 4}, {1, 30}, {1, 17, 44, 2}};
  at::Tensor ids = at::zeros({3, 6}, at::kLong), mask = at::zeros({3, 6}, at::kLong);
  for (std::size_t b = 0; b < rows.size(); ++b)
    for (std::size_t s = 0; s < rows[b].size(); ++s) ids[b][s] = rows[b][s], mask[b][s] = 1;
  at::Tensor batch = m->forward(ids, mask);
  for (std::size_t b = 0; b < rows.size(); ++b) {
    const auto len = static_cast<std::int64_t>(rows[b].size());
    at::Tensor alone = m->forward(at::tensor(rows[b], at::kLong).unsqueeze(0))[0];
    CHECK(at::allclose(batch[b].slice(0, 0, len), alone, 1e-5, 1e-5));
  }
}

TEST_CASE("Llama's KV cache: step-by-step logits equal the full sequence", "[model][llama][cache]") {
  for (auto [heads, kv_heads] : {std::pair{4, 4}, std::pair{4, 2}, std::pair{8, 2}}) {
    auto c = tiny_config(heads, kv_heads);
    c.rope_linear_factor = heads == 8 ? 2.0 : 1.0;
    auto m = tiny_model(c, 5);
    c10::InferenceMode guard;
    const at::Tensor ids = at::tensor(std::vector<std::int64_t>{1, 7, 33, 9, 21, 4, 48, 12, 3, 30, 1, 5, 6, 40, 2, 11, 19, 25},
                                      at::kLong).view({2, 9});
    // Left padding, HF generate()'s way: row 1 starts with two pads, positions cumsum(mask) - 1.
    at::Tensor mask = at::ones({2, 9}, at::kLong);
    mask[1][0] = 0, mask[1][1] = 0;
    at::Tensor positions = (mask.cumsum(1) - 1).clamp_min(0);
    const at::Tensor full = m->forward(ids, mask, positions);
    model::LlamaKvCache cache;
    auto probe = std::make_shared<ProbeAdapter>(0.0);
    m->set_adapter("model.layers.1.self_attn.k_proj", probe);
    std::vector<at::Tensor> pieces;
    std::int64_t at_pos = 0;
    for (std::int64_t chunk : {3, 1, 1, 2, 1, 1}) {  // a prompt, then single steps and a pair
      pieces.push_back(m->forward(ids.slice(1, at_pos, at_pos + chunk), mask.slice(1, at_pos, at_pos + chunk),
                                  positions.slice(1, at_pos, at_pos + chunk), &cache));
      CHECK(probe->last.offset == at_pos);  // adapters learn where the new rows start
      at_pos += chunk;
      CHECK(cache.length == at_pos);
    }
    at::Tensor stepped = at::cat(pieces, 1);
    at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(full);
    double diff = (stepped - full).abs().masked_select(real).max().item<double>();
    INFO(heads << "/" << kv_heads << " heads: cached vs full max abs diff " << diff);
    CHECK(diff <= 1e-5);
    CHECK(cache.key[0].sizes() == at::IntArrayRef({2, kv_heads, 9, 32 / heads}));
    m->clear_adapters();
    // Greedy decoding with the cache picks the same tokens as recomputing everything.
    for (bool stop : {false, true})
      for (const auto& prompt : {std::vector<std::int64_t>{1}, std::vector<std::int64_t>{1, 7, 33, 9}}) {
        at::Tensor p = at::tensor(prompt, at::kLong);
        CHECK(at::equal(m->greedy(p, 12, stop), m->greedy_uncached(p, 12, stop)));
      }
  }
}
