// gaggle — the command line. Owns the verb table, dispatches, catches and maps exit
// codes (style.md §6). Everything a verb does lives in lib/; cmd/<verb>.cpp is thin.
// The same main runs in both executables: gaggle, where the verbs that need LibTorch are
// stubs that exec() the torch binary, and gaggle-torch, where they are real
// (cmd/torch_exec.h).
#include <malloc.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "cli.h"
#include "io/error.h"
#include "io/terminal_text.h"
#include "torch_exec.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

const Verb kVerbs[] = {
    {"train-expert", "Train a LoRA expert on your own data (JSONL)", setup_train_expert},
    {"train-gate", "Train the post-hoc routing gate of an expert", setup_train_gate},
    {"publish", "Sign and push an expert bundle to a hub", setup_publish},
    {"pull", "Fetch and verify a pool of experts from a hub", setup_pull},
    {"assemble", "Build a routed model from a base and a pool", setup_assemble},
    {"eval", "Evaluate models and routers on held-out tasks", setup_eval},
    {"keygen", "Make an Ed25519 signing key (OpenSSH format)", setup_keygen},
    {"sign", "Sign an expert bundle", setup_sign},
    {"verify", "Verify a bundle's signature, signer and files", setup_verify},
    {"inspect", "Describe a safetensors file, base model, bundle or routed model", setup_inspect},
    {"hub", "Create and manage hub repositories", setup_hub},
    {"pool", "Show what a local pool holds", setup_pool},
    {"diff", "Show what changed between two versions of an expert, tensor by tensor", setup_diff},
    {"log", "List an expert's versions on a hub: signer, date, what changed", setup_log},
    {"generate", "Generate text with a base or routed model", setup_generate},
    {"import-peft", "Turn a Hugging Face PEFT LoRA adapter into an expert bundle", setup_import_peft},
    {"export-peft", "Write an expert bundle as a PEFT LoRA adapter", setup_export_peft},
    {"debug", "Developer tools: conformance runners, fixtures, self-check", setup_debug},
};

// gaggle inspect: files (and whatever else inspect.cpp reads without LibTorch) in process;
// a model directory, base (config.json) or routed (assembly.json), is described with the
// torch rooms (model/base_info.h, route/assembly.h): gaggle hands it to the torch binary.
Runner inspect_model_dirs_in_torch(CLI::App& sub, Runner in_process) {
  note_torch_verb("inspect MODEL_DIR");
  return [&sub, in_process]() -> int {
    namespace fs = std::filesystem;
    const CLI::Option* path = sub.get_option_no_throw("path");
    if (path && path->count() == 1) {
      fs::path dir = path->results().front();
      std::error_code ec;
      if (fs::exists(dir / "config.json", ec) || fs::exists(dir / "assembly.json", ec)) exec_torch("inspect MODEL_DIR");
    }
    return in_process();
  };
}

void print_error(const Error& e) {
  // Messages quote what files and servers said: printed inert (io/terminal_text.h).
  std::cerr << "gaggle: error: " << io::terminal_safe(e.what()) << "\n";
  if (!e.hint().empty()) std::cerr << "hint: " << io::terminal_safe(e.hint()) << "\n";
}

int run(int argc, char** argv) {
  CLI::App app{"gaggle — recycle many LoRA experts into one routed model (PHATGOOSE)", "gaggle"};
  app.set_version_flag("--version", std::string("gaggle ") + GAGGLE_VERSION);
  app.require_subcommand(0, 1);
  app.footer(
      "\nThe workflow:\n"
      "  contributor:  train-expert -> train-gate -> publish (signed bundle -> hub)\n"
      "  anyone:       pull (hub -> verified pool) -> assemble -> eval / generate\n"
      "\nRun 'gaggle <verb> --help' for a verb's options and a worked example.");

  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const Verb& verb : kVerbs) {
    CLI::App* sub = app.add_subcommand(verb.name, verb.summary);
    Runner runner = verb.setup(*sub);
    if (!is_torch_binary() && std::string_view(verb.name) == "inspect")
      runner = inspect_model_dirs_in_torch(*sub, std::move(runner));
    runners.emplace_back(sub, std::move(runner));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "gaggle: error: " << io::terminal_safe(e.what()) << "\n";
    std::string verb;
    for (auto& [sub, runner] : runners)
      if (sub->parsed()) verb = sub->get_name() + " ";
    std::cerr << "hint: run 'gaggle " << verb << "--help' for usage\n";
    return kExitUsage;
  }

  for (auto& [sub, runner] : runners) {
    if (!sub->parsed()) continue;
    int rc = runner();
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::cerr << "gaggle: error: cannot write to standard output\n";
      return kExitFailure;
    }
    return rc;
  }
  std::cerr << app.help() << "\n";
  return kExitUsage;
}

}  // namespace
}  // namespace gaggle::cli

int main(int argc, char** argv) {
  // Big tensors fault in page by page (~10 µs each here); keeping freed memory mapped
  // makes repeated large allocations cheap (build-notes.md, "Page faults").
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  gaggle::cli::remember_argv(argv);
  try {
    return gaggle::cli::run(argc, argv);
  } catch (const gaggle::Error& e) {
    gaggle::cli::print_error(e);
    return e.code() == gaggle::ErrorCode::usage ? gaggle::cli::kExitUsage : gaggle::cli::kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "gaggle: error: " << gaggle::io::terminal_safe(e.what()) << "\n";
    return gaggle::cli::kExitFailure;
  }
}
