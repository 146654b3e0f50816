// PEFT adapters in and out (lib/bundle/peft_adapter.h): an adapter written in PEFT's
// layout by the test gives, once imported, the logits PEFT's own rule gives (the base with
// W + scale · B A merged in, computed here in double), and import then export returns the
// same tensors, byte for byte.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bundle/lora_scaling.h"
#include "bundle/manifest.h"
#include "bundle/peft_adapter.h"
#include "eval/experts.h"
#include "io/dtype.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "model/fingerprint.h"
#include "model/t5.h"
#include "peft/lora.h"
#include "support/test_support.h"
#include "train/detail/model_ops.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

model::T5Config peft_test_config() {
  model::T5Config c;
  c.vocab_size = 64;
  c.d_model = 16;
  c.d_kv = 4;
  c.d_ff = 24;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.num_heads = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.gated = true;
  c.tie_word_embeddings = false;
  return c;
}

struct Base {
  fs::path dir;
  std::vector<bundle::BaseLinear> linears;
  std::string fingerprint;
};

Base make_base(const fs::path& dir) {
  torch::manual_seed(3);
  auto t5 = model::make_t5(peft_test_config());
  model::save_t5(t5, dir);
  Base b{dir, {}, model::base_fingerprint(dir)};
  for (const auto& name : t5->linear_names()) {
    auto w = t5->linear_weight(name);
    b.linears.push_back({name, w.size(1), w.size(0)});
  }
  return b;
}

// One LoRA pair as PEFT saves it, values already rounded to `dtype`.
struct PeftPair {
  std::string module;
  torch::Tensor a, b;  // float32 holding dtype-exact values
};

// Writes ADAPTER_DIR the way PEFT's save_pretrained does (F16 tensors by default).
std::vector<PeftPair> write_peft_adapter(const fs::path& dir, const Base& base, const nlohmann::ordered_json& config,
                                         const std::function<std::int64_t(const std::string&)>& rank_of,
                                         io::DType dtype = io::DType::F16) {
  fs::create_directories(dir);
  test::write_text(dir / "adapter_config.json", config.dump(2));
  io::SafetensorsWriter w;
  std::vector<PeftPair> pairs;
  torch::manual_seed(11);
  for (const auto& l : base.linears) {
    const std::int64_t r = rank_of(l.name);
    if (r == 0) continue;
    PeftPair p{l.name, torch::randn({r, l.d_in}) * 0.3, torch::randn({l.d_out, r}) * 0.3};
    for (auto* t : {&p.a, &p.b}) {
      std::vector<std::uint16_t> bits(static_cast<std::size_t>(t->numel()));
      auto c = t->contiguous();
      const float* v = c.data_ptr<float>();
      for (std::size_t i = 0; i < bits.size(); ++i)
        bits[i] = dtype == io::DType::F16 ? io::f32_to_f16_bits(v[i]) : io::f32_to_bf16_bits(v[i]);
      for (std::size_t i = 0; i < bits.size(); ++i)
        c.data_ptr<float>()[i] = dtype == io::DType::F16 ? io::f16_bits_to_f32(bits[i]) : io::bf16_bits_to_f32(bits[i]);
      *t = c;
      const std::string key = "base_model.model." + l.name + (t == &p.a ? ".lora_A.weight" : ".lora_B.weight");
      w.add(key, dtype, t->sizes().vec(), std::as_bytes(std::span<const std::uint16_t>(bits)));
    }
    pairs.push_back(p);
  }
  w.set_metadata("format", "pt");
  w.write(dir / "adapter_model.safetensors");
  return pairs;
}

bundle::PeftImportOptions import_options(const Base& base, const fs::path& adapter, const fs::path& out) {
  bundle::PeftImportOptions o;
  o.adapter_dir = adapter;
  o.linears = base.linears;
  o.task_type = "SEQ_2_SEQ_LM";
  o.base_fingerprint = base.fingerprint;
  o.name = "imported";
  o.version = "1.0.0";
  o.out_dir = out;
  return o;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The config the logits test uses: rsLoRA, a rank pattern on every q, an alpha pattern
// on the feed-forward output, targets given as a list of suffixes.
nlohmann::ordered_json rich_config() {
  return nlohmann::ordered_json{{"peft_type", "LORA"},
                                {"task_type", "SEQ_2_SEQ_LM"},
                                {"base_model_name_or_path", "tiny-t5"},
                                {"r", 4},
                                {"lora_alpha", 8},
                                {"use_rslora", true},
                                {"target_modules", {"q", "v", "wo"}},
                                {"rank_pattern", {{"q", 2}}},
                                {"alpha_pattern", {{"DenseReluDense\\.wo", 3}}},
                                {"lora_dropout", 0.1},
                                {"bias", "none"},
                                {"fan_in_fan_out", false},
                                {"modules_to_save", nullptr},
                                {"use_dora", false},
                                {"layer_replication", nullptr},
                                {"init_lora_weights", true},
                                {"inference_mode", true}};
}

std::int64_t rich_rank(const std::string& m) {
  if (ends_with(m, ".q")) return 2;
  if (ends_with(m, ".v") || ends_with(m, ".wo")) return 4;
  return 0;
}

double rich_scale(const std::string& m) {
  const double alpha = ends_with(m, "DenseReluDense.wo") ? 3.0 : 8.0;
  return alpha / std::sqrt(static_cast<double>(rich_rank(m)));
}

torch::Tensor logits_on_padded_batch(model::T5ModelImpl& t5) {
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor({{5, 9, 17, 3, 1}, {7, 2, 1, 0, 0}}, torch::kLong);
  auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}, torch::kLong);
  auto dec = torch::tensor({{0, 4, 8}, {0, 6, 1}}, torch::kLong);
  return t5.forward(ids, mask, dec);
}

}  // namespace

TEST_CASE("an imported PEFT adapter gives PEFT's logits (rsLoRA, rank and alpha patterns)", "[peft][interop]") {
  test::TempDir tmp;
  auto base = make_base(tmp.path() / "base");
  auto pairs = write_peft_adapter(tmp.path() / "adapter", base, rich_config(), rich_rank);
  // q, v, wo: 3 per encoder block, 5 per decoder block (cross-attention q, v too).
  REQUIRE(pairs.size() == 16);
  auto r = bundle::import_peft(import_options(base, tmp.path() / "adapter", tmp.path() / "bundle"));
  CHECK(r.modules == 16);
  CHECK(r.per_module_ranks);
  CHECK(r.per_module_alphas);
  CHECK(r.use_rslora);
  CHECK(r.dtype == "F16");
  CHECK_FALSE(r.has_gates);

  // gaggle: the bundle's LoRA attached the way train-gate attaches it.
  auto manifest = bundle::read_manifest(tmp.path() / "bundle");
  CHECK(manifest.body["method"] == "lora");
  auto scaling = bundle::lora_scaling(manifest.body, "manifest");
  auto gaggle_model = model::load_t5(base.dir);
  auto tensors = peft::read_tensors(tmp.path() / "bundle" / "adapter.safetensors");
  auto lora = train::detail::lora_for_tensors(*gaggle_model, tensors, scaling, "bundle");
  train::detail::attach(*gaggle_model, lora);
  gaggle_model->eval();
  auto got = logits_on_padded_batch(*gaggle_model);

  // PEFT's rule, independently: W + scale · B A merged into the base, in double.
  auto reference = model::load_t5(base.dir);
  reference->eval();
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : pairs) {
      auto w = reference->linear_weight(p.module);
      auto delta = torch::matmul(p.b.to(torch::kDouble), p.a.to(torch::kDouble)) * rich_scale(p.module);
      w.copy_((w.to(torch::kDouble) + delta).to(torch::kFloat));
    }
  }
  auto want = logits_on_padded_batch(*reference);
  const double diff = (got - want).abs().max().item<double>();
  INFO("max |gaggle - merged PEFT| = " << diff);
  CHECK(diff < 1e-5);
  // And the adapter matters: without it the logits differ.
  CHECK((logits_on_padded_batch(*model::load_t5(base.dir)) - want).abs().max().item<double>() > 1e-2);

  // eval's stacks carry the same scale: B · scale · r, which the routers divide by r.
  auto stack = eval::load_experts({eval::describe_expert(tmp.path() / "bundle")}, base.fingerprint);
  for (const auto& p : pairs) {
    const double r_m = static_cast<double>(p.a.size(0));
    auto stacked = stack.B.at(p.module)[0] / r_m;
    CHECK((stacked - p.b * rich_scale(p.module)).abs().max().item<double>() < 1e-6);
  }
}

TEST_CASE("import then export returns PEFT's tensors byte for byte, and the config PEFT needs", "[peft][interop]") {
  test::TempDir tmp;
  auto base = make_base(tmp.path() / "base");
  for (auto dtype : {io::DType::F16, io::DType::BF16}) {
    const std::string tag = std::string(io::dtype_name(dtype));
    write_peft_adapter(tmp.path() / ("adapter-" + tag), base, rich_config(), rich_rank, dtype);
    bundle::import_peft(import_options(base, tmp.path() / ("adapter-" + tag), tmp.path() / ("bundle-" + tag)));
    bundle::PeftExportOptions e;
    e.bundle_dir = tmp.path() / ("bundle-" + tag);
    e.out_dir = tmp.path() / ("export-" + tag);
    auto r = bundle::export_peft(e);
    CHECK(r.task_type == "SEQ_2_SEQ_LM");
    CHECK_FALSE(r.wrote_routing);

    auto original = io::SafetensorsFile::open(tmp.path() / ("adapter-" + tag) / "adapter_model.safetensors");
    auto exported = io::SafetensorsFile::open(tmp.path() / ("export-" + tag) / "adapter_model.safetensors");
    REQUIRE(original.tensors().size() == exported.tensors().size());
    for (const auto& t : original.tensors()) {
      INFO(tag << " " << t.name);
      const auto* u = exported.find(t.name);
      REQUIRE(u);
      CHECK(u->dtype == t.dtype);
      CHECK(u->shape == t.shape);
      auto a = original.data(t);
      auto b = exported.data(*u);
      CHECK((a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin())));
    }
    auto config = nlohmann::json::parse(test::read_text(tmp.path() / ("export-" + tag) / "adapter_config.json"));
    CHECK(config["peft_type"] == "LORA");
    CHECK(config["task_type"] == "SEQ_2_SEQ_LM");
    CHECK(config["base_model_name_or_path"] == "tiny-t5");
    CHECK(config["r"] == 4);
    CHECK(config["lora_alpha"] == 8.0);
    CHECK(config["use_rslora"] == true);
    CHECK(config["target_modules"].size() == 16);
    CHECK(config["rank_pattern"].size() == 6);   // every q has rank 2
    CHECK(config["alpha_pattern"].size() == 4);  // every feed-forward wo has alpha 3
    CHECK(config["rank_pattern"]["encoder\\.block\\.0\\.layer\\.0\\.SelfAttention\\.q"] == 2);

    // The exported directory imports again to the same bundle tensors and scaling.
    bundle::import_peft(import_options(base, tmp.path() / ("export-" + tag), tmp.path() / ("again-" + tag)));
    auto m1 = bundle::read_manifest(tmp.path() / ("bundle-" + tag));
    auto m2 = bundle::read_manifest(tmp.path() / ("again-" + tag));
    auto s1 = bundle::lora_scaling(m1.body, "1"), s2 = bundle::lora_scaling(m2.body, "2");
    for (const auto& l : base.linears)
      if (rich_rank(l.name)) CHECK(s1.scale(l.name, rich_rank(l.name)) == s2.scale(l.name, rich_rank(l.name)));
    CHECK(test::read_text(tmp.path() / ("bundle-" + tag) / "adapter.safetensors") ==
          test::read_text(tmp.path() / ("again-" + tag) / "adapter.safetensors"));
  }
}

TEST_CASE("gates travel in gaggle_routing.safetensors, which import reads back", "[peft][interop]") {
  test::TempDir tmp;
  auto base = make_base(tmp.path() / "base");
  auto config = rich_config();
  config["use_rslora"] = false;
  write_peft_adapter(tmp.path() / "adapter", base, config, rich_rank, io::DType::F16);
  const fs::path bundle_dir = tmp.path() / "bundle";
  bundle::import_peft(import_options(base, tmp.path() / "adapter", bundle_dir));
  // What train-gate adds: a gate and an average activation per module, retrieval embeddings.
  auto tensors = peft::read_tensors(bundle_dir / "adapter.safetensors");
  for (const auto& m : peft::modules_in(tensors)) {
    tensors[m + ".gate"] = torch::randn({tensors[m + ".lora_A"].size(1)});
    tensors[m + ".avg_act"] = torch::randn({tensors[m + ".lora_A"].size(1)});
  }
  tensors["retrieval_embeddings"] = torch::randn({3, 16});
  peft::write_tensors(bundle_dir / "adapter.safetensors", tensors, {{"format", "gaggle-expert"}});
  bundle::write_manifest(bundle_dir, bundle::read_manifest(bundle_dir));

  bundle::PeftExportOptions e;
  e.bundle_dir = bundle_dir;
  e.out_dir = tmp.path() / "export";
  CHECK(bundle::export_peft(e).wrote_routing);
  auto routing = io::SafetensorsFile::open(tmp.path() / "export" / "gaggle_routing.safetensors");
  CHECK(routing.tensors().size() == 16 * 2 + 1);
  auto peft_file = io::SafetensorsFile::open(tmp.path() / "export" / "adapter_model.safetensors");
  for (const auto& t : peft_file.tensors()) CHECK(t.name.find(".gate") == std::string::npos);

  auto r = bundle::import_peft(import_options(base, tmp.path() / "export", tmp.path() / "again"));
  CHECK(r.has_gates);
  CHECK(bundle::read_manifest(tmp.path() / "again").body["method"] == "phatgoose");
  auto back = peft::read_tensors(tmp.path() / "again" / "adapter.safetensors");
  CHECK(back.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(back.count(name));
    CHECK(torch::equal(back[name].to(torch::kHalf).to(torch::kFloat), t.to(torch::kHalf).to(torch::kFloat)));
  }
  CHECK(torch::equal(back["retrieval_embeddings"], tensors["retrieval_embeddings"]));

  // A changed bundle file is refused before anything is written.
  test::write_text(bundle_dir / "train-log.jsonl", "tampered\n");
  e.out_dir = tmp.path() / "export2";
  CHECK_THROWS_AS(bundle::export_peft(e), Error);
  CHECK_FALSE(fs::exists(tmp.path() / "export2"));
}

TEST_CASE("Llama module paths map the same way, as a causal LM", "[peft][interop]") {
  test::TempDir tmp;
  Base base;
  for (int layer = 0; layer < 2; ++layer)
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      base.linears.push_back({"model.layers." + std::to_string(layer) + "." + m, 32, std::string(m).find("k_proj") != std::string::npos || std::string(m).find("v_proj") != std::string::npos ? 16 : 32});
  base.fingerprint = "sha256:" + std::string(64, 'a');
  nlohmann::ordered_json config = {{"peft_type", "LORA"},       {"task_type", "CAUSAL_LM"}, {"r", 8},
                                   {"lora_alpha", 16},          {"target_modules", "model\\.layers\\.\\d+\\.self_attn\\.(q|v)_proj"},
                                   {"exclude_modules", {"layers.1.self_attn.v_proj"}}};
  write_peft_adapter(tmp.path() / "adapter", base, config, [](const std::string& m) -> std::int64_t {
    if (m == "model.layers.1.self_attn.v_proj") return 0;
    return (ends_with(m, "q_proj") || ends_with(m, "v_proj")) ? 8 : 0;
  });
  auto o = import_options(base, tmp.path() / "adapter", tmp.path() / "bundle");
  o.task_type = "CAUSAL_LM";
  auto r = bundle::import_peft(o);
  CHECK(r.modules == 3);
  bundle::PeftExportOptions e;
  e.bundle_dir = tmp.path() / "bundle";
  e.out_dir = tmp.path() / "export";
  e.base_model = "my-org/tiny-llama";
  auto x = bundle::export_peft(e);
  CHECK(x.task_type == "CAUSAL_LM");
  auto config_out = nlohmann::json::parse(test::read_text(tmp.path() / "export" / "adapter_config.json"));
  CHECK(config_out["base_model_name_or_path"] == "my-org/tiny-llama");
  CHECK(config_out["target_modules"] ==
        nlohmann::json({"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj"}));
  // A T5 base is not what a causal-LM adapter was made for.
  o.task_type = "SEQ_2_SEQ_LM";
  o.out_dir = tmp.path() / "wrong";
  try {
    bundle::import_peft(o);
    FAIL("a CAUSAL_LM adapter was imported for a sequence-to-sequence base");
  } catch (const Error& err) {
    CHECK(err.code() == ErrorCode::mismatch);
    CHECK_THAT(err.what(), Catch::Contains("task_type 'CAUSAL_LM'"));
  }
}

TEST_CASE("what a LoRA bundle cannot hold is refused, naming the file and the reason", "[peft][interop]") {
  test::TempDir tmp;
  auto base = make_base(tmp.path() / "base");
  int n = 0;
  // Each case: a change to the config or the files, the error code, and words the message must hold.
  auto refused = [&](const std::function<void(const fs::path&, nlohmann::ordered_json&)>& change, ErrorCode code,
                     const std::string& words) {
    const fs::path adapter = tmp.path() / ("adapter" + std::to_string(++n));
    auto config = rich_config();
    write_peft_adapter(adapter, base, config, rich_rank);
    change(adapter, config);
    if (fs::exists(adapter / "adapter_config.json") && !config.is_null())
      test::write_text(adapter / "adapter_config.json", config.dump(2));
    const fs::path out = tmp.path() / ("out" + std::to_string(n));
    INFO("case " << n << ": " << words);
    try {
      bundle::import_peft(import_options(base, adapter, out));
      FAIL("imported");
    } catch (const Error& err) {
      CHECK(err.code() == code);
      CHECK_THAT(err.what(), Catch::Contains(words));
    }
    CHECK_FALSE(fs::exists(out));
  };
  refused([](const fs::path& d, nlohmann::ordered_json&) {
    fs::rename(d / "adapter_model.safetensors", d / "adapter_model.bin");
  }, ErrorCode::unsupported, "adapter_model.bin: is a Python pickle");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["use_dora"] = true; }, ErrorCode::unsupported,
          "adapter_config.json: use_dora is true");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["modules_to_save"] = {"lm_head"}; },
          ErrorCode::unsupported, "modules_to_save");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["bias"] = "lora_only"; }, ErrorCode::unsupported,
          "bias 'lora_only'");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["peft_type"] = "IA3"; }, ErrorCode::unsupported,
          "peft_type 'IA3' is not LORA");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["layer_replication"] = {{0, 1}}; },
          ErrorCode::unsupported, "field 'layer_replication'");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["layers_to_transform"] = {0}; }, ErrorCode::unsupported,
          "layers_to_transform");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["task_type"] = "SEQ_CLS"; }, ErrorCode::mismatch,
          "task_type 'SEQ_CLS'");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["r"] = "four"; }, ErrorCode::invalid, "field 'r'");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["lora_alpha"] = -1; }, ErrorCode::invalid,
          "field 'lora_alpha'");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["rank_pattern"] = {{"q", 3}}; }, ErrorCode::invalid,
          "has rank 2, but");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["target_modules"] = {"q", "v"}; }, ErrorCode::invalid,
          "target_modules does not select it");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["target_modules"] = {"q", "v", "wo", "k"}; },
          ErrorCode::invalid, "which target_modules selects");
  refused([](const fs::path&, nlohmann::ordered_json& c) { c["target_modules"] = "(("; }, ErrorCode::invalid,
          "is not a regular expression");
  refused([](const fs::path& d, nlohmann::ordered_json& c) {
    test::write_text(d / "adapter_config.json", "{\"peft_type\": \"LORA\",");
    c = nullptr;
  }, ErrorCode::invalid, "adapter_config.json: invalid JSON");
  // Tensors: another base's module, another width, a bias, a lone lora_A, a torn file.
  auto rewrite = [&](const fs::path& d, const std::function<void(io::SafetensorsWriter&)>& add) {
    auto f = io::SafetensorsFile::open(d / "adapter_model.safetensors");
    io::SafetensorsWriter w;
    for (const auto& t : f.tensors()) w.add(t.name, t.dtype, t.shape, f.data(t));
    add(w);
    w.write(d / "adapter_model.safetensors");
  };
  const std::vector<std::byte> zeros(4 * 16 * 4);
  refused([&](const fs::path& d, nlohmann::ordered_json& c) {
    c["target_modules"] = ".*";
    rewrite(d, [&](io::SafetensorsWriter& w) {
      w.add("base_model.model.encoder.block.7.layer.0.SelfAttention.q.lora_A.weight", io::DType::F32, {4, 16}, zeros);
      w.add("base_model.model.encoder.block.7.layer.0.SelfAttention.q.lora_B.weight", io::DType::F32, {16, 4}, zeros);
    });
  }, ErrorCode::mismatch, "module 'encoder.block.7.layer.0.SelfAttention.q' is not a linear layer of this base");
  refused([&](const fs::path& d, nlohmann::ordered_json&) {
    rewrite(d, [&](io::SafetensorsWriter& w) {
      w.add("base_model.model.encoder.block.0.layer.0.SelfAttention.q.bias", io::DType::F32, {16}, std::span(zeros).first(64));
    });
  }, ErrorCode::unsupported, "SelfAttention.q.bias' is not a LoRA factor");
  refused([&](const fs::path& d, nlohmann::ordered_json& c) {
    c["target_modules"] = ".*";
    rewrite(d, [&](io::SafetensorsWriter& w) {
      w.add("base_model.model.encoder.block.0.layer.0.SelfAttention.k.lora_A.weight", io::DType::F32, {4, 16}, zeros);
    });
  }, ErrorCode::invalid, "has lora_A but no lora_B");
  refused([&](const fs::path& d, nlohmann::ordered_json&) {
    auto text = test::read_text(d / "adapter_model.safetensors");
    test::write_text(d / "adapter_model.safetensors", text.substr(0, text.size() - 10));
  }, ErrorCode::invalid, "adapter_model.safetensors");
  refused([&](const fs::path& d, nlohmann::ordered_json&) { fs::remove(d / "adapter_model.safetensors"); },
          ErrorCode::not_found, "has no adapter_model.safetensors");
}

TEST_CASE("an imported bundle has LoRA only until train-gate gives it gates", "[peft][interop]") {
  test::TempDir tmp;
  auto base = make_base(tmp.path() / "base");
  write_peft_adapter(tmp.path() / "adapter", base, rich_config(), rich_rank);
  bundle::import_peft(import_options(base, tmp.path() / "adapter", tmp.path() / "bundle"));
  auto stack = eval::load_experts({eval::describe_expert(tmp.path() / "bundle")}, base.fingerprint);
  CHECK(stack.gates.empty());
  CHECK_THAT(stack.missing_gate, Catch::Contains(".gate"));
}
