// gaggle debug forward — the conformance runner (issue #3, item 7; issue #14): runs a
// golden case through a base model and writes the same keys computed by gaggle, to
// compare with the reference outputs. The architecture comes from config.json: T5 cases
// (input ids, decoder ids, labels, choices) or Llama cases (Hugging Face's padded batch,
// or llama2.c's sequences).
#include <iostream>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/json_file.h"
#include "model/architecture.h"
#include "model/conformance.h"
#include "model/llama.h"
#include "model/runtime.h"
#include "model/t5.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_debug_forward(CLI::App& sub) {
  struct Options {
    std::string base, case_path, out;
    model::RuntimeOptions runtime;
  };
  auto opt = std::make_shared<Options>();
  sub.add_option("--base", opt->base, "Base model directory (config.json + model.safetensors)")->required();
  sub.add_option("--case", opt->case_path,
                 "Case JSON: input_ids, attention_mask, decoder_input_ids, labels, ... (T5); input_ids, "
                 "attention_mask, position_ids or llama2.c-style cases (Llama)")
      ->required();
  sub.add_option("--out", opt->out, "Where to write the results (JSON); '-' for standard output")->required();
  sub.add_option("--device", opt->runtime.device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--threads", opt->runtime.threads, "Compute threads (0 = every core)")->capture_default_str();
  set_example(sub,
              "  gaggle debug forward --base tests/data/golden/t5-v1_1-tiny \\\n"
              "      --case tests/data/golden/t5-v1_1-tiny/case.json --out got.json\n"
              "  gaggle debug forward --base tests/data/golden/llama-tiny \\\n"
              "      --case tests/data/golden/llama-tiny/case.json --out got.json");
  return [opt]() -> int {
    model::configure_runtime(opt->runtime);
    nlohmann::json result;
    if (model::read_architecture(opt->base) == model::Architecture::llama) {
      auto model = model::load_llama(opt->base, {opt->runtime.device});
      result = model::run_llama_case(*model, io::read_json_file(opt->case_path), opt->case_path);
    } else {
      auto model = model::load_t5(opt->base, {opt->runtime.device});
      result = model::run_t5_case(*model, io::read_json_file(opt->case_path), opt->case_path);
    }
    if (opt->out == "-") {
      std::cout << result.dump() << "\n";
    } else {
      io::write_file_atomic(opt->out, result.dump() + "\n");
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
