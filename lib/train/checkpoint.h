#pragma once
// Crash-safe training checkpoints (issue #4, item 3).
//
// A checkpoint is a directory written beside nothing else and moved into place
// atomically (io::AtomicDirectory, swapped over the previous one), holding:
//   trainable.safetensors  the trainable tensors ("<module>.lora_A", ...)
//   best.safetensors       the best snapshot so far (when a validation has run)
//   optimizer.pt           the optimiser state (torch archive)
//   rng.bin                torch's CPU generator state (dropout)
//   state.json             step, data position, best step/score, and the run's settings
// A killed run loses at most the steps since the last checkpoint; --resume continues
// from it and ends at the same weights as an uninterrupted run.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace torch::optim {
class Optimizer;
}

namespace gaggle::train {

struct CheckpointState {
  int64_t step = 0;      // optimiser steps done
  int64_t epoch = 0;     // DataOrder position after those steps
  int64_t position = 0;
  int64_t best_step = -1;  // -1: no validation yet
  double best_score = 0;   // lower is better (see loop.h)
  std::optional<double> best_valid_loss;
  std::optional<double> best_valid_accuracy;
  nlohmann::json settings;  // what must not change between a run and its resume
};

void save_checkpoint(const std::filesystem::path& dir, const CheckpointState& state,
                     const std::map<std::string, at::Tensor>& trainable, const std::map<std::string, at::Tensor>& best,
                     const torch::optim::Optimizer& optimizer);

// Restores into `trainable` (copied in place), `best` (replaced) and `optimizer`; checks
// `expected_settings` against the saved ones and names the first that differs.
CheckpointState load_checkpoint(const std::filesystem::path& dir, const nlohmann::json& expected_settings,
                                std::map<std::string, at::Tensor>& trainable, std::map<std::string, at::Tensor>& best,
                                torch::optim::Optimizer& optimizer);

bool checkpoint_exists(const std::filesystem::path& dir);

}  // namespace gaggle::train
