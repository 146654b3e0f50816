// gaggle debug pretrain — pretrain a tiny T5 base from scratch with span corruption
// (issue #9 item 2). The work is in lib/train/pretrain.h; this file maps flags to
// PretrainOptions and prints the result. examples/base/ was made by it.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "model/runtime.h"
#include "progress.h"
#include "train/pretrain.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct PretrainFlags {
  train::PretrainOptions opt;
  std::string corpus, tokenizer, out, feed_forward = "relu", save_dtype = "f32";
  std::vector<std::string> tokenizer_text;
  int threads = 0;
  bool quiet = false;
  bool json = false;
};

}  // namespace

Runner setup_debug_pretrain(CLI::App& sub) {
  auto f = std::make_shared<PretrainFlags>();
  auto& o = f->opt;
  auto& c = o.config;
  // A tiny default: ~1 M parameters, ~4 MB on disk.
  c.d_model = 128;
  c.d_kv = 32;
  c.d_ff = 512;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.num_heads = 4;
  o.loop.steps = 3000;
  o.loop.lr = 2e-3;
  o.loop.batch_size = 32;
  o.loop.eval_every = 250;
  o.loop.save_every = 500;
  o.loop.log_every = 50;
  o.loop.warmup_fraction = 0.06;
  sub.add_option("--corpus", f->corpus, "Plain text, one example per line (the suite's corpus/pretrain.txt: inputs only)")
      ->required();
  sub.add_option("--tokenizer", f->tokenizer, "An existing spiece.model (or a directory holding one)");
  sub.add_option("--tokenizer-text", f->tokenizer_text,
                 "Train a SentencePiece unigram tokenizer on these text files instead (e.g. corpus/tokenizer.txt)");
  sub.add_option("--vocab-size", o.vocab_size, "SentencePiece pieces when training a tokenizer (+100 sentinels)")
      ->capture_default_str();
  sub.add_option("--out", f->out, "OUT_DIR: the Hugging Face checkpoint directory to write")->required();
  sub.add_option("--d-model", c.d_model, "Model width")->capture_default_str();
  sub.add_option("--d-kv", c.d_kv, "Width of one attention head")->capture_default_str();
  sub.add_option("--d-ff", c.d_ff, "Feed-forward width")->capture_default_str();
  sub.add_option("--layers", c.num_layers, "Encoder blocks")->capture_default_str();
  sub.add_option("--decoder-layers", c.num_decoder_layers, "Decoder blocks")->capture_default_str();
  sub.add_option("--heads", c.num_heads, "Attention heads")->capture_default_str();
  sub.add_option("--feed-forward", f->feed_forward, "relu | gated-gelu")->capture_default_str();
  sub.add_option("--noise-density", o.corruption.noise_density, "Share of tokens hidden")->capture_default_str();
  sub.add_option("--mean-span", o.corruption.mean_span_length, "Mean length of a hidden span")->capture_default_str();
  sub.add_option("--reconstruct", o.corruption.reconstruct_fraction,
                 "Share of examples whose target is the whole line (teaches copying; 0: pure span corruption)")
      ->capture_default_str();
  sub.add_option("--max-input-len", o.max_input_len, "Tokens of a line kept")->capture_default_str();
  sub.add_option("--valid-fraction", o.valid_fraction, "Lines held back for validation")->capture_default_str();
  sub.add_option("--steps", o.loop.steps, "Optimiser steps")->capture_default_str();
  sub.add_option("--lr", o.loop.lr, "Peak learning rate (AdamW; linear warm-up, then constant)")->capture_default_str();
  sub.add_option("--weight-decay", o.loop.weight_decay, "AdamW weight decay")->capture_default_str();
  sub.add_option("--warmup", o.loop.warmup_fraction, "Warm-up share of the steps")->capture_default_str();
  sub.add_option("--batch-size", o.loop.batch_size, "Lines per micro-batch")->capture_default_str();
  sub.add_option("--accumulate", o.loop.accumulate, "Micro-batches per optimiser step")->capture_default_str();
  sub.add_option("--seed", o.loop.seed, "Seed of the initialisation, data order and masks")->capture_default_str();
  sub.add_option("--eval-every", o.loop.eval_every, "Validate every N steps (0: never); the best step is kept")
      ->capture_default_str();
  sub.add_option("--save-every", o.loop.save_every, "Checkpoint every N steps (0: never)")->capture_default_str();
  sub.add_option("--log-every", o.loop.log_every, "pretrain-log.jsonl line every N steps")->capture_default_str();
  sub.add_flag("--resume", o.loop.resume, "Continue a killed run from its last checkpoint");
  sub.add_flag("--force", o.force, "Replace an existing OUT_DIR");
  sub.add_option("--save-dtype", f->save_dtype,
                 "f32 | bf16 | f16: how model.safetensors stores the weights (bf16: half the bytes, each "
                 "weight rounded to 8 significant bits)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  sub.add_option("--device", o.device, "cpu | cuda | cuda:N")->capture_default_str();
  sub.add_option("--threads", f->threads, "Compute threads (0: every core)")->capture_default_str();
  sub.add_flag("-q,--quiet", f->quiet, "No progress output");
  sub.add_flag("--json", f->json, "Print the result as JSON");
  set_example(sub,
              "  gaggle debug make-tasks --out suite --seed 0\n"
              "  gaggle debug pretrain --corpus suite/corpus/pretrain.txt \\\n"
              "      --tokenizer-text suite/corpus/tokenizer.txt --vocab-size 1000 --out examples/base");
  return [f]() -> int {
    auto& o = f->opt;
    o.corpus = f->corpus;
    o.tokenizer = f->tokenizer;
    for (const auto& t : f->tokenizer_text) o.tokenizer_text.emplace_back(t);
    o.out_dir = f->out;
    if (f->feed_forward == "relu") o.config.gated = false;
    else if (f->feed_forward == "gated-gelu") o.config.gated = true;
    else throw_error(ErrorCode::usage, "cli", "--feed-forward must be relu or gated-gelu, not '" + f->feed_forward + "'");
    o.save_dtype = f->save_dtype == "bf16" ? io::DType::BF16 : f->save_dtype == "f16" ? io::DType::F16 : io::DType::F32;
    model::configure_runtime({f->threads, o.device});
    auto bar = std::make_shared<ProgressBar>("pretrain", ProgressBar::default_style(f->quiet));
    o.loop.progress = training_progress(bar);
    const bool quiet = f->quiet;
    o.note = [bar, quiet](const std::string& s) {
      if (!quiet) bar->event(s);
    };
    auto r = train::pretrain(o);
    bar->finish();
    const double tps = r.loop.seconds > 0 ? r.loop.tokens / r.loop.seconds : 0;
    if (f->json) {
      nlohmann::ordered_json j;
      j["base_dir"] = r.out_dir.string();
      j["parameters"] = r.parameters;
      j["vocab_size"] = r.vocab_size;
      j["bytes_on_disk"] = r.bytes_on_disk;
      j["steps"] = r.loop.steps;
      j["best_step"] = r.loop.best_step;
      j["valid_loss"] = r.loop.best_valid_loss ? nlohmann::ordered_json(*r.loop.best_valid_loss) : nullptr;
      j["train_lines"] = r.train_lines;
      j["valid_lines"] = r.valid_lines;
      j["seconds"] = r.loop.seconds;
      j["tokens_per_second"] = tps;
      std::cout << j.dump(2) << "\n";
      return kExitSuccess;
    }
    std::printf("base written to %s (%lld parameters, vocabulary %lld, %.1f MB on disk)\n", r.out_dir.string().c_str(),
                static_cast<long long>(r.parameters), static_cast<long long>(r.vocab_size),
                static_cast<double>(r.bytes_on_disk) / 1e6);
    std::printf("  %lld steps on %lld lines in %s (%.0f tokens/s)\n", static_cast<long long>(r.loop.steps),
                static_cast<long long>(r.train_lines), ProgressBar::format_duration(r.loop.seconds).c_str(), tps);
    if (r.loop.best_step >= 0)
      std::printf("  kept step %lld: span-corruption validation loss %.4f (%lld lines)\n",
                  static_cast<long long>(r.loop.best_step), r.loop.best_valid_loss.value_or(0),
                  static_cast<long long>(r.valid_lines));
    std::printf("next: gaggle inspect %s\n", f->out.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
