#pragma once
// The training loop shared by train-expert and train-gate (design.md §2): AdamW with the
// warm-up-then-constant schedule, gradient accumulation, clipping, validation every N
// steps keeping the best snapshot, crash-safe checkpoints every M steps, a live
// train-log.jsonl and progress through a callback.
//
// The loop does not know the model: the driver hands it the trainable tensors and a
// function that returns the summed token loss of a micro-batch of example indices. The
// loss of one optimiser step is sum(NLL over every target token of the step) / (number
// of those tokens), so accumulation and data parallelism give the same update as one
// big batch.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/progress.h"

namespace gaggle::train {

class Collective;  // distributed.h

struct LoopOptions {
  int64_t steps = 1000;           // optimiser steps
  double lr = 5e-3;               // peak learning rate (AdamW)
  double weight_decay = 0.0;      // AdamW weight decay
  double warmup_fraction = 0.06;  // linear warm-up, then constant
  double clip_norm = 1.0;         // gradient-norm clipping (<= 0: off)
  int64_t batch_size = 8;         // examples per micro-batch
  int64_t accumulate = 1;         // micro-batches per optimiser step
  int64_t eval_every = 100;       // validate every N steps and at the end (0: never)
  int64_t patience = 0;           // stop once this many validations in a row bring no better
                                  // score than the best (0: always run every step)
  int64_t save_every = 100;       // checkpoint every N steps (0: never)
  int64_t log_every = 10;         // train-log.jsonl line every N steps (progress: every step)
  uint64_t seed = 0;              // data order (and, in the driver, the LoRA init)
  std::filesystem::path work_dir;  // checkpoint/ and train-log.jsonl live here
  bool resume = false;             // continue from work_dir/checkpoint
  nlohmann::json settings;         // recorded in checkpoints; a resume must match them
  ProgressCallback progress;
  // Data parallelism (distributed.h): null for one process. batch_size is per rank; only
  // rank 0 writes the log and checkpoints and reports progress.
  std::shared_ptr<Collective> collective;
};

struct ValidResult {
  double loss = 0;
  std::optional<double> accuracy;
};

struct MicroBatchLoss {
  at::Tensor nll_sum;      // summed token NLL (differentiable)
  int64_t tokens = 0;      // real tokens processed (input + target), for throughput
};

struct LoopHooks {
  int64_t num_examples = 0;
  std::vector<at::Tensor> parameters;           // trainable, in a fixed order
  std::map<std::string, at::Tensor> named;      // the same tensors by name (checkpoints)
  std::function<int64_t(const std::vector<int64_t>&)> target_tokens;  // loss tokens of examples
  std::function<MicroBatchLoss(const std::vector<int64_t>&)> loss;
  std::function<ValidResult()> validate;        // empty: no validation
};

struct LoopResult {
  int64_t steps = 0;       // steps run: fewer than asked when patience stopped the run
  bool stopped_early = false;
  int64_t best_step = -1;  // -1 when never validated: the final weights are kept
  std::optional<double> best_valid_loss;
  std::optional<double> best_valid_accuracy;
  std::map<std::string, at::Tensor> best;  // the kept weights, CPU copies
  std::vector<nlohmann::json> log;         // the train-log.jsonl lines
  int64_t resumed_from = 0;                // step the run resumed at (0: fresh)
  double seconds = 0;
  int64_t tokens = 0;
};

// Which validation is better: accuracy (higher) when there is one, ties and the rest
// by loss (lower). Returned as a score where lower is better.
double validation_score(const ValidResult& r);

LoopResult run_training(const LoopOptions& options, const LoopHooks& hooks);

// Reads a train-log.jsonl (for resumes and tests).
std::vector<nlohmann::json> read_train_log(const std::filesystem::path& path);

}  // namespace gaggle::train
