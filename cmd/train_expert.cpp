// gaggle train-expert — train a LoRA expert on your own data (issue #4). The work is in
// lib/train/expert.h; this file maps flags to ExpertOptions and prints the result.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "training_run.h"
#include "train/expert.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct TrainExpertFlags {
  train::ExpertOptions opt;
  std::string base, data, valid, out;
  int threads = 0;
  int nproc = 1;
  bool quiet = false;
  bool json = false;
};

}  // namespace

Runner setup_train_expert(CLI::App& sub) {
  auto f = std::make_shared<TrainExpertFlags>();
  auto& o = f->opt;
  sub.add_option("--base", f->base, "Base model directory (Hugging Face T5 or Llama checkpoint)")->required();
  sub.add_option("--data", f->data, "Training data, JSONL: {\"input\", \"target\"} (+ \"choices\", \"label\")")->required();
  sub.add_option("--valid", f->valid, "Validation JSONL (default: hold back 5% of --data)");
  sub.add_option("--out", f->out, "EXPERT_DIR: the bundle to write")->required();
  sub.add_option("--name", o.name, "Expert name ([a-z0-9][a-z0-9._-]*)")->required();
  sub.add_option("--version", o.version, "Expert version (semver)")->capture_default_str();
  sub.add_option("--steps", o.loop.steps, "Optimiser steps")->capture_default_str();
  sub.add_option("--lr", o.loop.lr, "Peak learning rate (AdamW; 6% linear warm-up, then constant)")->capture_default_str();
  sub.add_option("--weight-decay", o.loop.weight_decay, "AdamW weight decay")->capture_default_str();
  sub.add_option("--batch-size", o.loop.batch_size, "Examples per micro-batch")->capture_default_str();
  sub.add_option("--accumulate", o.loop.accumulate, "Micro-batches per optimiser step")->capture_default_str();
  sub.add_option("--max-input-len", o.tokenize.max_input_len, "Input tokens kept (longer inputs are cut)")
      ->capture_default_str();
  sub.add_option("--max-target-len", o.tokenize.max_target_len, "Longest target allowed (longer is an error)")
      ->capture_default_str();
  sub.add_option("--rank", o.lora.rank, "LoRA rank r")->capture_default_str();
  sub.add_option("--alpha", o.lora.alpha, "LoRA alpha (update scaled by alpha / r)")->capture_default_str();
  sub.add_option("--targets", o.targets,
                 "Linear layers with LoRA: all | suffixes 'q,v,wo' | re:<regex> over module paths")
      ->capture_default_str();
  sub.add_option("--seed", o.loop.seed, "Seed of the LoRA init, data order and hold-out")->capture_default_str();
  sub.add_option("--eval-every", o.loop.eval_every, "Validate every N steps (0: never); the best step is kept")
      ->capture_default_str();
  sub.add_option("--patience", o.loop.patience,
                 "Stop once N validations in a row are no better than the best (0: run every step); "
                 "with --steps as the ceiling, an easy task stops early and a hard one trains on")
      ->capture_default_str();
  sub.add_option("--save-every", o.loop.save_every, "Checkpoint every N steps (0: never)")->capture_default_str();
  sub.add_option("--log-every", o.loop.log_every, "train-log.jsonl line every N steps")->capture_default_str();
  sub.add_option("--license", o.license, "Licence recorded in the manifest (SPDX id)");
  sub.add_option("--description", o.description, "Description recorded in the manifest");
  sub.add_flag("--resume", o.loop.resume, "Continue a killed run from its last checkpoint");
  sub.add_flag("--force", o.force, "Replace an existing EXPERT_DIR");
  add_training_run_flags(sub, o.device, f->threads, f->nproc, f->quiet);
  sub.add_flag("--json", f->json, "Print the result as JSON");
  set_example(sub,
              "  gaggle train-expert --base t5-small --data sst2/train.jsonl --out experts/sst2 --name sst2\n"
              "  gaggle train-expert ... --resume      # after a crash: continue from the last checkpoint");
  return [f]() -> int {
    auto& o = f->opt;
    o.base_dir = f->base;
    o.data = f->data;
    o.valid = f->valid;
    o.out_dir = f->out;
    auto run = start_training_run("train-expert", f->nproc, f->threads, o.device, f->quiet, o.loop);
    if (run.spawned) return run.spawned_exit;
    auto r = train::train_expert(o);
    run.bar->finish();
    if (run.follower) return kExitSuccess;  // rank 0 reports
    const double tps = r.loop.seconds > 0 ? r.loop.tokens / r.loop.seconds : 0;
    if (f->json) {
      nlohmann::ordered_json j;
      j["expert_dir"] = r.out_dir.string();
      j["steps"] = r.loop.steps;
      j["stopped_early"] = r.loop.stopped_early;
      j["best_step"] = r.loop.best_step;
      j["valid_loss"] = r.loop.best_valid_loss ? nlohmann::ordered_json(*r.loop.best_valid_loss) : nullptr;
      j["valid_accuracy"] = r.loop.best_valid_accuracy ? nlohmann::ordered_json(*r.loop.best_valid_accuracy) : nullptr;
      j["train_examples"] = r.train_examples;
      j["valid_examples"] = r.valid_examples;
      j["modules"] = r.modules.size();
      j["seconds"] = r.loop.seconds;
      j["tokens_per_second"] = tps;
      j["resumed_from"] = r.loop.resumed_from;
      std::cout << j.dump(2) << "\n";
      return kExitSuccess;
    }
    if (r.truncated_inputs > 0)
      warn(std::to_string(r.truncated_inputs) + " inputs were longer than --max-input-len and were cut");
    std::printf("expert '%s' written to %s\n", o.name.c_str(), r.out_dir.string().c_str());
    std::printf("  %zu modules, rank %lld, %lld steps on %lld examples (%.0f tokens/s)%s\n", r.modules.size(),
                static_cast<long long>(o.lora.rank), static_cast<long long>(r.loop.steps),
                static_cast<long long>(r.train_examples), tps,
                r.loop.stopped_early ? "; stopped early: no better validation in --patience rounds" : "");
    if (r.loop.best_step >= 0) {
      std::printf("  kept step %lld: valid loss %.4f", static_cast<long long>(r.loop.best_step),
                  r.loop.best_valid_loss.value_or(0));
      if (r.loop.best_valid_accuracy) std::printf(", accuracy %.2f%%", *r.loop.best_valid_accuracy * 100);
      std::printf(" (%lld validation examples)\n", static_cast<long long>(r.valid_examples));
    }
    std::printf("next: gaggle train-gate --base %s --expert %s --data %s\n", f->base.c_str(), f->out.c_str(),
                f->data.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
