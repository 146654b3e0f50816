// Real Hugging Face PEFT (0.21.0, transformers 5.17.0) against gaggle, on the golden T5
// and Llama bases, with the fixtures of tests/data/peft (README.md there says how they
// were made):
//   - adapters PEFT made itself (get_peft_model, rsLoRA, rank and alpha patterns,
//     "all-linear") import and give PEFT's logits;
//   - gaggle's export of an adapter is byte-identical to what PEFT then loaded, and
//     PEFT's logits with it are the logits gaggle computes.
// The golden bases have N(0, 0.5²) weights, so float32 alone moves their logits by
// ~2e-5 (case.json's info_float64_vs_float32_max_abs_diff): the bound here is 1e-4, the
// conformance bound; tests/eval/peft_interop_test.cpp holds gaggle to 1e-5 on a tamer base.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "bundle/lora_scaling.h"
#include "bundle/manifest.h"
#include "bundle/peft_adapter.h"
#include "io/json_file.h"
#include "model/base_info.h"
#include "model/llama.h"
#include "model/t5.h"
#include "peft/lora.h"
#include "support/tensor_compare.h"
#include "support/test_support.h"
#include "train/detail/model_ops.h"

using namespace gaggle;
using gaggle::test::max_diff;
namespace fs = std::filesystem;

namespace {

fs::path peft_dir() { return test::data_dir() / "peft"; }

struct Arch {
  std::string name;      // "t5" or "llama"
  fs::path base;         // golden base
  std::string task_type;
};

Arch t5_arch() { return {"t5", test::data_dir() / "golden" / "t5-v1_1-tiny", "SEQ_2_SEQ_LM"}; }
Arch llama_arch() { return {"llama", test::data_dir() / "golden" / "llama-tiny", "CAUSAL_LM"}; }

fs::path import_into(const Arch& arch, const fs::path& adapter, const fs::path& out) {
  auto info = model::describe_base(arch.base);
  bundle::PeftImportOptions o;
  o.adapter_dir = adapter;
  for (const auto& l : info.linears) o.linears.push_back({l.name, l.d_in, l.d_out});
  o.task_type = arch.task_type;
  o.base_fingerprint = info.fingerprint;
  o.name = "real-peft";
  o.version = "1.0.0";
  o.out_dir = out;
  bundle::import_peft(o);
  return out;
}

// The bundle's LoRA attached as train-gate and eval attach it.
peft::LoraSet attach_bundle(model::BaseModel& model, const fs::path& bundle_dir) {
  auto scaling = bundle::lora_scaling(bundle::read_manifest(bundle_dir).body, "manifest");
  auto tensors = peft::read_tensors(bundle_dir / "adapter.safetensors");
  auto set = train::detail::lora_for_tensors(model, tensors, scaling, bundle_dir.string());
  train::detail::attach(model, set);
  return set;
}

torch::Tensor tensor_of(const nlohmann::json& j) {
  std::vector<int64_t> shape;
  for (const nlohmann::json* p = &j; p->is_array(); p = &(*p)[0]) shape.push_back(static_cast<int64_t>(p->size()));
  std::vector<float> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_array())
      for (const auto& e : v) walk(e);
    else
      flat.push_back(v.get<float>());
  };
  walk(j);
  return torch::from_blob(flat.data(), shape, torch::kFloat).clone();
}

// gaggle's logits for the golden case's inputs with `bundle_dir` attached; for Llama the
// rows of real tokens only (what PEFT's file holds).
torch::Tensor gaggle_logits(const Arch& arch, const fs::path& bundle_dir) {
  torch::NoGradGuard no_grad;
  auto c = io::read_json_file(arch.base / "case.json");
  auto ids = tensor_of(c["input_ids"]).to(torch::kLong);
  auto mask = tensor_of(c["attention_mask"]).to(torch::kLong);
  if (arch.name == "t5") {
    auto t5 = model::load_t5(arch.base);
    t5->eval();
    auto lora = attach_bundle(*t5, bundle_dir);
    return t5->forward(ids, mask, tensor_of(c["decoder_input_ids"]).to(torch::kLong));
  }
  auto llama = model::load_llama(arch.base);
  llama->eval();
  auto lora = attach_bundle(*llama, bundle_dir);
  auto logits = llama->forward(ids, mask, tensor_of(c["position_ids"]).to(torch::kLong));
  return logits.index({mask.to(torch::kBool)});
}

// PEFT's logits from the fixture, on the same rows as gaggle_logits.
torch::Tensor peft_logits(const Arch& arch, const nlohmann::json& logits, const char* key) {
  auto t = tensor_of(logits[key]);
  if (arch.name == "t5") return t;
  auto c = io::read_json_file(arch.base / "case.json");
  return t.index({tensor_of(c["attention_mask"]).to(torch::kBool)});
}

}  // namespace

TEST_CASE("adapters real PEFT made import and give PEFT's logits (T5 and Llama)", "[peft][interop][real]") {
  test::TempDir tmp;
  for (const auto& arch : {t5_arch(), llama_arch()}) {
    auto logits = io::read_json_file(peft_dir() / (arch.name + "-logits.json"));
    auto bundle_dir = import_into(arch, peft_dir() / (arch.name + "-peft-made"), tmp.path() / (arch.name + "-made"));
    const double d = max_diff(gaggle_logits(arch, bundle_dir), peft_logits(arch, logits, "logits_peft_made"));
    INFO(arch.name << ": max |gaggle - PEFT| = " << d);
    CHECK(d < 1e-4);
    // The adapter is not a no-op: PEFT's logits are far from the base's.
    CHECK(max_diff(peft_logits(arch, logits, "logits_peft_made"), peft_logits(arch, logits, "logits_written")) > 1e-2);
  }
}

TEST_CASE("gaggle's export is what real PEFT loaded, and PEFT's logits with it are gaggle's", "[peft][interop][real]") {
  test::TempDir tmp;
  for (const auto& arch : {t5_arch(), llama_arch()}) {
    INFO(arch.name);
    auto bundle_dir = import_into(arch, peft_dir() / (arch.name + "-written"), tmp.path() / arch.name);
    bundle::PeftExportOptions e;
    e.bundle_dir = bundle_dir;
    e.out_dir = tmp.path() / (arch.name + "-exported");
    bundle::export_peft(e);
    for (const char* file : {"adapter_config.json", "adapter_model.safetensors"})
      CHECK(test::read_text(e.out_dir / file) == test::read_text(peft_dir() / (arch.name + "-exported") / file));
    auto logits = io::read_json_file(peft_dir() / (arch.name + "-logits.json"));
    const double d = max_diff(gaggle_logits(arch, bundle_dir), peft_logits(arch, logits, "logits_exported"));
    INFO("max |gaggle - PEFT(exported)| = " << d);
    CHECK(d < 1e-4);
    CHECK(max_diff(peft_logits(arch, logits, "logits_exported"), peft_logits(arch, logits, "logits_written")) == 0.0);
  }
}
