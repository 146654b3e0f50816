#pragma once
// Progress of a training run, reported through a callback in the options struct
// (lib/ never prints). cmd/progress.h draws it: a bar on a terminal, plain periodic lines
// otherwise, nothing with --quiet. Torch-free, so any verb can include it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace gaggle::train {

struct TrainProgress {
  std::string phase;          // "train", "valid" (a validation just finished), "done", or
                              // a setup phase of the driver ("tokenize", "avg_act", "embed")
  int64_t step = 0;           // optimiser steps done (for setup phases: items done)
  int64_t total_steps = 0;    // steps (items) in all
  double loss = 0;            // mean training loss over the steps since the last log line
                              // (reported after every step; log lines every log_every)
  double lr = 0;              // learning rate of the last step
  double tokens_per_second = 0;  // real (non-pad) tokens, input + target, since the start
  double elapsed_seconds = 0;
  double eta_seconds = 0;
  std::optional<double> valid_loss;      // set in the "valid" phase
  std::optional<double> valid_accuracy;  // when the validation data has choices
  bool is_best = false;                  // this validation is the best so far
  bool checkpointed = false;             // a checkpoint was written at this step
};

using ProgressCallback = std::function<void(const TrainProgress&)>;

}  // namespace gaggle::train
