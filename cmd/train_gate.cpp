// gaggle train-gate — the post-hoc PHATGOOSE gate of an expert, plus the baselines' keys
// (average activations, retrieval embeddings), added to its bundle (issue #4, item 5).
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "training_run.h"
#include "train/gate.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct TrainGateFlags {
  train::GateOptions opt;
  std::string base, expert, data;
  int threads = 0;
  int nproc = 1;
  bool quiet = false;
  bool json = false;
};

}  // namespace

Runner setup_train_gate(CLI::App& sub) {
  auto f = std::make_shared<TrainGateFlags>();
  auto& o = f->opt;
  o.loop.steps = 100;
  o.loop.save_every = 50;
  sub.add_option("--base", f->base, "Base model directory the expert was trained on")->required();
  sub.add_option("--expert", f->expert, "EXPERT_DIR written by train-expert (updated in place)")->required();
  sub.add_option("--data", f->data, "The expert's own training data (JSONL)")->required();
  sub.add_option("--steps", o.loop.steps, "Optimiser steps")->capture_default_str();
  sub.add_option("--lr", o.loop.lr, "Peak learning rate (AdamW; 6% linear warm-up, then constant)")->capture_default_str();
  sub.add_option("--batch-size", o.loop.batch_size, "Examples per micro-batch")->capture_default_str();
  sub.add_option("--accumulate", o.loop.accumulate, "Micro-batches per optimiser step")->capture_default_str();
  sub.add_option("--max-input-len", o.tokenize.max_input_len, "Input tokens kept")->capture_default_str();
  sub.add_option("--max-target-len", o.tokenize.max_target_len, "Longest target allowed")->capture_default_str();
  sub.add_option("--seed", o.loop.seed, "Seed of the data order and the example samples")->capture_default_str();
  sub.add_option("--avg-act-examples", o.avg_act_examples, "Examples averaged for the average-activation key")
      ->capture_default_str();
  sub.add_option("--embed-examples", o.embed_examples, "Training inputs embedded for retrieval")->capture_default_str();
  sub.add_option("--save-every", o.loop.save_every, "Checkpoint every N steps (0: never)")->capture_default_str();
  sub.add_option("--log-every", o.loop.log_every, "gate-log.jsonl line every N steps")->capture_default_str();
  sub.add_flag("--resume", o.loop.resume, "Continue a killed run from its last checkpoint");
  add_training_run_flags(sub, o.device, f->threads, f->nproc, f->quiet);
  sub.add_flag("--json", f->json, "Print the result as JSON");
  set_example(sub, "  gaggle train-gate --base t5-small --expert experts/sst2 --data sst2/train.jsonl");
  return [f]() -> int {
    auto& o = f->opt;
    o.base_dir = f->base;
    o.expert_dir = f->expert;
    o.data = f->data;
    auto run = start_training_run("train-gate", f->nproc, f->threads, o.device, f->quiet, o.loop);
    if (run.spawned) return run.spawned_exit;
    auto r = train::train_gate(o);
    run.bar->finish();
    if (run.follower) return kExitSuccess;  // rank 0 reports
    if (f->json) {
      nlohmann::ordered_json j;
      j["expert_dir"] = f->expert;
      j["steps"] = r.loop.steps;
      j["modules"] = r.modules;
      j["avg_act_examples"] = r.avg_act_examples;
      j["embed_examples"] = r.embed_examples;
      j["seconds"] = r.loop.seconds;
      std::cout << j.dump(2) << "\n";
      return kExitSuccess;
    }
    std::printf("gates of %lld modules trained (%lld steps) and written to %s\n", static_cast<long long>(r.modules),
                static_cast<long long>(r.loop.steps), f->expert.c_str());
    std::printf("  average activations over %lld examples, retrieval embeddings of %lld inputs\n",
                static_cast<long long>(r.avg_act_examples), static_cast<long long>(r.embed_examples));
    std::printf("the bundle is unsigned: gaggle sign %s\n", f->expert.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
