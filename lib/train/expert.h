#pragma once
// train-expert (issue #4): a LoRA expert trained on a contributor's own data, written as
// an unsigned expert bundle (design.md §4).
//
// EXPERT_DIR after a run (the bundle; manifest.json lists every other file):
//   manifest.json        method "lora", base fingerprint, rank, modules, hyper-parameters,
//                        training-data summary (file name, sha256, counts; never the data)
//   adapter.safetensors  "<module>.lora_A" [r, d_in], "<module>.lora_B" [d_out, r] of the
//                        best validation step
//   train-log.jsonl      one line per logged step: step, loss, lr, tokens (+ valid_loss,
//                        valid_accuracy, best at validations)
// While training, checkpoints and the live log live beside it, in
// <parent>/.<EXPERT_DIR name>.train/ (so the bundle directory is only ever complete);
// that work directory is removed when the bundle has been written.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "peft/lora.h"
#include "train/dataset.h"
#include "train/loop.h"

namespace gaggle::train {

struct ExpertOptions {
  std::filesystem::path base_dir;   // Hugging Face checkpoint directory (T5 or Llama: model/base_model.h)
  std::filesystem::path data;       // training JSONL
  std::filesystem::path valid;      // validation JSONL; empty: hold back `holdout_fraction`
  std::filesystem::path out_dir;    // EXPERT_DIR
  std::string name;                 // bundle name ([a-z0-9][a-z0-9._-]*)
  std::string version = "1.0.0";
  std::string license;              // recorded in the manifest when set
  std::string description;
  std::string targets = "all";      // see peft::select_targets
  peft::LoraOptions lora;           // r = 16, alpha = 1, A ~ N(0, 0.01^2)
  LoopOptions loop;                 // work_dir and settings are filled in by train_expert
  TokenizeOptions tokenize;
  double holdout_fraction = 0.05;
  int64_t max_valid_examples = 1000;  // validation uses at most this many examples
  std::string device = "cpu";
  bool force = false;               // replace an existing EXPERT_DIR
};

struct ExpertResult {
  std::filesystem::path out_dir;
  LoopResult loop;
  int64_t train_examples = 0;
  int64_t valid_examples = 0;
  int64_t truncated_inputs = 0;
  std::vector<std::string> modules;
  std::string base_fingerprint;
};

// The work directory of a run writing `out_dir`: <parent>/.<name>.train
std::filesystem::path work_dir_for(const std::filesystem::path& out_dir, const std::string& suffix = "train");

// Trains and writes the bundle. Throws Error{exists} when out_dir exists and !force (before
// any work), Error{invalid} for bad data (file:line:field), Error{usage} for bad options.
ExpertResult train_expert(const ExpertOptions& options);

}  // namespace gaggle::train
