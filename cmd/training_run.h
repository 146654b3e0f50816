#pragma once
// What train-expert and train-gate share before and around their training loop:
// spawning local ranks (--nproc) unless launched torchrun-style, the thread count per
// rank, joining the collective, and the progress bar (quiet on every rank but 0).
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "progress.h"
#include "train/loop.h"

namespace gaggle::cli {

struct TrainingRun {
  bool spawned = false;   // this process launched --nproc ranks and is done: return spawned_exit
  int spawned_exit = 0;
  bool follower = false;  // rank > 0: trains, but rank 0 reports
  std::shared_ptr<ProgressBar> bar;
};

// The flags both verbs take for this: --device, --threads, --nproc, -q/--quiet.
void add_training_run_flags(CLI::App& sub, std::string& device, int& threads, int& nproc, bool& quiet);

// Fills loop.collective and loop.progress.
TrainingRun start_training_run(const std::string& label, int nproc, int threads, const std::string& device, bool quiet,
                               train::LoopOptions& loop);

}  // namespace gaggle::cli
