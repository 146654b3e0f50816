// gaggle debug — developer tools: conformance runners, fixtures, the self-check. Each
// tool is its own file (cmd/debug_<tool>.cpp); this table lists them. The tools that need
// LibTorch (selfcheck, route, forward, pretrain) are stubs in gaggle that exec() the
// torch binary (cmd/front_verbs.cpp); the table is the same in both executables.
#include "verbs.h"

namespace gaggle::cli {

Runner setup_debug_selfcheck(CLI::App& sub);  // LibTorch
Runner setup_debug_make_bundle(CLI::App& sub);
Runner setup_debug_route(CLI::App& sub);      // LibTorch
Runner setup_debug_forward(CLI::App& sub);    // LibTorch
Runner setup_debug_pretrain(CLI::App& sub);   // LibTorch
Runner setup_debug_tokenize(CLI::App& sub);
Runner setup_debug_convert(CLI::App& sub);
Runner setup_debug_make_tasks(CLI::App& sub);
Runner setup_debug_train_spm(CLI::App& sub);

namespace {

struct DebugTool {
  const char* name;
  const char* summary;
  SetupFn setup;
};

const DebugTool kDebugTools[] = {
    {"selfcheck", "Check the installation: libraries, threads, BLAS speed, crypto", setup_debug_selfcheck},
    {"make-bundle", "Make a small valid unsigned bundle (random tensors) for tests and demos", setup_debug_make_bundle},
    {"route", "Run one routed linear layer on a golden routing case", setup_debug_route},
    {"forward", "Run a conformance case through a T5 or Llama base model (golden format)", setup_debug_forward},
    {"pretrain", "Pretrain a tiny T5 base with span corruption (how examples/base was made)", setup_debug_pretrain},
    {"tokenize", "Tokenize texts as Hugging Face's tokenizer for the base does (T5 or Llama; conformance runner)", setup_debug_tokenize},
    {"convert", "Convert SuperGLUE, BIG-Bench Hard, SST-2, TREC, AG News files into task JSONL", setup_debug_convert},
    {"make-tasks", "Write the synthetic task suite (12 held-in, 8 held-out tasks) from a seed", setup_debug_make_tasks},
    {"train-spm", "Train a T5-style SentencePiece tokenizer (spiece.model) on text files", setup_debug_train_spm},
};

}  // namespace

Runner setup_debug(CLI::App& sub) {
  sub.require_subcommand(1);
  auto runners = std::make_shared<std::vector<std::pair<CLI::App*, Runner>>>();
  for (const DebugTool& tool : kDebugTools) {
    CLI::App* t = sub.add_subcommand(tool.name, tool.summary);
    runners->emplace_back(t, tool.setup(*t));
  }
  set_example(sub, "  gaggle debug selfcheck");
  return [runners]() -> int {
    for (auto& [t, runner] : *runners)
      if (t->parsed()) return runner();
    return kExitUsage;
  };
}

}  // namespace gaggle::cli
