#include "training_run.h"

#include "model/runtime.h"
#include "train/distributed.h"

namespace gaggle::cli {

void add_training_run_flags(CLI::App& sub, std::string& device, int& threads, int& nproc, bool& quiet) {
  sub.add_option("--device", device, "cpu | cuda | cuda:N")->capture_default_str();
  sub.add_option("--threads", threads, "Compute threads (0: every core)")->capture_default_str();
  sub.add_option("--nproc", nproc,
                 "Data-parallel processes to start on this machine (c10d Gloo; --batch-size is per process). "
                 "Across machines, launch torchrun-style with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT")
      ->capture_default_str();
  sub.add_flag("-q,--quiet", quiet, "No progress output");
}

TrainingRun start_training_run(const std::string& label, int nproc, int threads, const std::string& device, bool quiet,
                               train::LoopOptions& loop) {
  TrainingRun run;
  auto env = train::distributed_env_from_environment();
  if (!env && nproc > 1) {
    run.spawned = true;
    run.spawned_exit = train::run_local_ranks(nproc);
    return run;
  }
  model::configure_runtime({train::threads_per_rank(threads, model::hardware_threads()), device});
  if (env && env->world_size > 1) {
    loop.collective = train::connect_collective(*env, device);
    run.follower = env->rank != 0;
  }
  run.bar = std::make_shared<ProgressBar>(label, ProgressBar::default_style(quiet || run.follower));
  loop.progress = training_progress(run.bar);
  return run;
}

}  // namespace gaggle::cli
