// gaggle import-peft — a Hugging Face PEFT LoRA adapter becomes an (unsigned) expert
// bundle for a gaggle base (lib/bundle/peft_adapter.h, docs/peft.md). Needs the base's
// layer shapes, so it lives in the torch binary beside inspect's model reader.
#include <iostream>

#include <nlohmann/json.hpp>

#include "bundle/peft_adapter.h"
#include "io/error.h"
#include "model/base_info.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct ImportPeftFlags {
  std::string adapter, base, name, version = "1.0.0", out, license, description;
  bool force = false;
  bool json = false;
};

}  // namespace

Runner setup_import_peft(CLI::App& sub) {
  auto f = std::make_shared<ImportPeftFlags>();
  sub.add_option("adapter", f->adapter, "ADAPTER_DIR: adapter_config.json + adapter_model.safetensors (PEFT's save_pretrained)")
      ->required();
  sub.add_option("--base", f->base, "Base model directory the adapter was trained on (Hugging Face layout)")->required();
  sub.add_option("--name", f->name, "Expert name ([a-z0-9][a-z0-9._-]*)")->required();
  sub.add_option("--version", f->version, "Expert version (semver)")->capture_default_str();
  sub.add_option("--out", f->out, "BUNDLE_DIR to write")->required();
  sub.add_option("--license", f->license, "Licence recorded in the manifest (SPDX id)");
  sub.add_option("--description", f->description, "Description recorded in the manifest");
  sub.add_flag("--force", f->force, "Replace an existing BUNDLE_DIR");
  sub.add_flag("--json", f->json, "Print the result as JSON");
  set_example(sub,
              "  gaggle import-peft ./my-lora --base t5-small --name sst2 --version 1.0.0 --out experts/sst2\n"
              "  gaggle train-gate --base t5-small --expert experts/sst2 --data sst2/train.jsonl\n"
              "\n"
              "The bundle holds LoRA only: give it a gate with 'gaggle train-gate' before routing it with\n"
              "phatgoose, and sign it with 'gaggle sign'. Refused, with the reason: DoRA, trained biases,\n"
              "modules_to_save, embedding LoRA, layers_to_transform, pickled .bin weights, unknown fields\n"
              "that are set. docs/peft.md has the whole mapping.");
  return [f]() -> int {
    auto base = model::describe_base(f->base);
    bundle::PeftImportOptions o;
    o.adapter_dir = f->adapter;
    o.base_fingerprint = base.fingerprint;
    for (const auto& l : base.linears) o.linears.push_back({l.name, l.d_in, l.d_out});
    const bool seq2seq = !o.linears.empty() && o.linears.front().name.rfind("encoder.", 0) == 0;
    o.task_type = seq2seq ? "SEQ_2_SEQ_LM" : "CAUSAL_LM";
    o.name = f->name;
    o.version = f->version;
    o.out_dir = f->out;
    o.force = f->force;
    o.license = f->license;
    o.description = f->description;
    auto r = bundle::import_peft(o);
    if (f->json) {
      nlohmann::ordered_json j;
      j["bundle"] = f->out;
      j["modules"] = r.modules;
      j["rank"] = r.rank;
      j["per_module_ranks"] = r.per_module_ranks;
      j["per_module_alphas"] = r.per_module_alphas;
      j["use_rslora"] = r.use_rslora;
      j["dtype"] = r.dtype;
      j["gates"] = r.has_gates;
      j["warnings"] = r.warnings;
      std::cout << j.dump(2) << "\n";
      return kExitSuccess;
    }
    for (const auto& w : r.warnings) warn(w);
    std::cout << "imported " << r.modules << " LoRA modules (r " << r.rank << (r.per_module_ranks ? ", per-module ranks" : "")
              << (r.use_rslora ? ", rsLoRA" : "") << (r.per_module_alphas ? ", per-module alphas" : "") << ", "
              << r.dtype << ") into " << f->out << "\n";
    if (!r.has_gates)
      std::cout << "no gates yet: gaggle train-gate --base " << f->base << " --expert " << f->out
                << " --data TRAIN.jsonl\n";
    std::cout << "the bundle is unsigned: gaggle sign " << f->out << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
