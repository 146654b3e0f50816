// gaggle export-peft — an expert bundle as a Hugging Face PEFT LoRA adapter directory
// that PeftModel.from_pretrained loads unchanged (lib/bundle/peft_adapter.h,
// docs/peft.md). Gates and keys go into gaggle_routing.safetensors, which PEFT ignores.
#include <iostream>

#include <nlohmann/json.hpp>

#include "bundle/peft_adapter.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct ExportPeftFlags {
  bundle::PeftExportOptions opt;
  std::string bundle, out;
  bool json = false;
};

}  // namespace

Runner setup_export_peft(CLI::App& sub) {
  auto f = std::make_shared<ExportPeftFlags>();
  sub.add_option("bundle", f->bundle, "BUNDLE_DIR: an expert bundle (train-expert, import-peft or a pool's)")->required();
  sub.add_option("--out", f->out, "ADAPTER_DIR to write")->required();
  sub.add_option("--base-model", f->opt.base_model,
                 "base_model_name_or_path to write (default: the manifest's base_model, if any)");
  sub.add_flag("--force", f->opt.force, "Replace an existing ADAPTER_DIR");
  sub.add_flag("--json", f->json, "Print the result as JSON");
  set_example(sub,
              "  gaggle export-peft experts/sst2 --out sst2-peft --base-model google/t5-v1_1-small\n"
              "  # python: PeftModel.from_pretrained(T5ForConditionalGeneration.from_pretrained(...), 'sst2-peft')");
  return [f]() -> int {
    f->opt.bundle_dir = f->bundle;
    f->opt.out_dir = f->out;
    auto r = bundle::export_peft(f->opt);
    if (f->json) {
      nlohmann::ordered_json j;
      j["adapter_dir"] = f->out;
      j["modules"] = r.modules;
      j["rank"] = r.rank;
      j["task_type"] = r.task_type;
      j["routing_file"] = r.wrote_routing;
      std::cout << j.dump(2) << "\n";
      return kExitSuccess;
    }
    std::cout << "exported " << r.modules << " LoRA modules (r " << r.rank << ", " << r.task_type << ") to " << f->out
              << (r.wrote_routing ? " (gates and keys in gaggle_routing.safetensors)" : "") << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
