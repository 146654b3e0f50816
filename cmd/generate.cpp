// gaggle generate — greedy generation with a base model or a routed model, one input per
// line (stdin, interactive on a terminal) or per --input; optional routing trace.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "io/error.h"
#include "verbs.h"
#ifdef GAGGLE_WITH_TORCH
#include <c10/core/InferenceMode.h>

#include "model/base_model.h"
#include "model/fingerprint.h"
#include "model/runtime.h"
#include "route/routed_model.h"
#include "text/tokenizer.h"
#endif

namespace gaggle::cli {
namespace {

struct GenerateFlags {
  std::string model, base, trace, device = "cpu";
  std::vector<std::string> inputs;
  int max_new_tokens = 64, threads = 0;
};

#ifdef GAGGLE_WITH_TORCH
int run_generate(const GenerateFlags& f) {
  namespace fs = std::filesystem;
  if (f.model.empty() && f.base.empty())
    throw Error(ErrorCode::usage, "cmd", "generate needs --model MODEL_DIR or --base DIR");
  if (!f.trace.empty() && f.model.empty())
    throw Error(ErrorCode::usage, "cmd", "--trace records routing: it needs --model MODEL_DIR");
  if (f.max_new_tokens < 1) throw Error(ErrorCode::usage, "cmd", "--max-new-tokens must be at least 1");
  model::configure_runtime({f.threads, f.device});
  fs::path base = f.base;
  if (base.empty()) base = route::read_assembly(f.model).base_dir;
  auto tokenizer = text::Tokenizer::load(base);
  auto model = model::load_base(base, {f.device, false});
  model->module().eval();
  const model::TokenFormat format = model->token_format(tokenizer.eos_id());
  std::optional<route::RoutedModel> routed;
  if (!f.model.empty()) {
    routed = route::RoutedModel::attach(*model, f.model, model::base_fingerprint(base));
    if (!f.trace.empty() && !routed->traced())
      throw Error(ErrorCode::usage, "cmd",
                  "--trace: router '" + std::string(route::router_name(routed->assembly().router)) +
                      "' sends no token to chosen experts, so there is nothing to trace",
                  "routing traces are for phatgoose, arrow, average-activation and retrieval models");
    if (!f.trace.empty()) routed->enable_trace();
  }
  const bool interactive = f.inputs.empty() && stdin_is_tty();
  auto generate = [&](const std::string& input) {
    c10::InferenceMode guard;
    auto generated = model->generate({format.prompt(tokenizer.encode(input, /*add_eos=*/false))}, f.max_new_tokens);
    std::printf("%s\n", tokenizer.decode(generated.front()).c_str());
    std::fflush(stdout);
  };
  if (!f.inputs.empty()) {
    for (const auto& input : f.inputs) generate(input);
  } else {
    if (interactive)
      std::cerr << "gaggle generate: " << (f.model.empty() ? base.string() : f.model)
                << " — one input per line, Ctrl-D to end\n> " << std::flush;
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty()) generate(line);
      if (interactive) std::cerr << "> " << std::flush;
    }
  }
  if (routed && !f.trace.empty()) routed->write_trace(f.trace);
  return kExitSuccess;
}
#endif

}  // namespace

Runner setup_generate(CLI::App& sub) {
  auto f = std::make_shared<GenerateFlags>();
  sub.add_option("--model", f->model, "A routed model directory (gaggle assemble)");
  sub.add_option("--base", f->base, "The base model; with --model, overrides the base recorded at assembly");
  sub.add_option("--input", f->inputs, "Input text (repeatable); default: one input per line on stdin");
  sub.add_option("--max-new-tokens", f->max_new_tokens, "Greedy steps at most (stops at EOS)")->capture_default_str();
  sub.add_option("--trace", f->trace, "Write the routing trace (per module, how many real tokens went to each expert) as JSON");
  sub.add_option("--threads", f->threads, "Compute threads (0 = every core)");
  sub.add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  set_example(sub,
              "  gaggle generate --model routed\n"
              "  echo 'Is this review positive? I loved it.' | gaggle generate --model routed --trace trace.json\n"
              "  gaggle generate --base t5-base --input 'translate English to German: hello'\n"
              "  gaggle generate --base llama-base --input 'Once upon a time'   # a decoder-only base: the continuation");
#ifdef GAGGLE_WITH_TORCH
  return [f]() -> int { return run_generate(*f); };
#else
  return not_built_yet(sub, "a build with LibTorch");
#endif
}

}  // namespace gaggle::cli
