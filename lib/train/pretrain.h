#pragma once
// Pretraining a tiny T5 base from scratch (issue #9 item 2): T5's span-corruption
// objective (Raffel et al. 2020, §3.1.4) over a plain-text corpus — for the embedded
// default, the *inputs* of the synthetic suite's held-in training files, never their
// answers — written as a Hugging Face checkpoint directory (config.json,
// model.safetensors, spiece.model).
//
// Span corruption of one line of n tokens (EOS not counted): round(n * noise_density)
// tokens (at least 1, at most n - 1) are noise, cut into round(noise / mean_span_length)
// spans (at least 1) that alternate with non-noise spans, the line starting with a
// non-noise span; span lengths are a random composition, as in T5's
// random_spans_noise_mask. The input keeps the non-noise tokens and puts <extra_id_i> in
// place of the i-th noise span; the target is <extra_id_0> span_0 <extra_id_1> span_1 ...
// <extra_id_k> (the closing sentinel) and EOS. Each time an example is drawn it is
// corrupted afresh (seeded by seed, line and draw), so the model sees new masks each epoch.
//
// With corruption.reconstruct_fraction > 0 that share of draws asks for the whole line
// instead (see SpanCorruptionOptions).
//
// OUT_DIR after a run: config.json, model.safetensors (F32, tied embeddings),
// spiece.model (copied), pretrain-log.jsonl, pretrain.json (the settings, corpus hash and
// result). Checkpoints live in <parent>/.<OUT_DIR name>.pretrain/ while it runs.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/dtype.h"
#include "model/t5_config.h"
#include "train/loop.h"

namespace gaggle::train {

struct SpanCorruptionOptions {
  double noise_density = 0.15;
  double mean_span_length = 3.0;
  // Share of draws whose target is the whole original line instead of the hidden spans
  // (T5 paper §3.3, the "replace spans" input with a full-sequence target, as in MASS /
  // BART): the same corrupted input, target = the line + EOS. It teaches the base to copy
  // from its input, which span corruption alone never asks for (the hidden spans are
  // exactly what the input lacks). 0: pure span corruption.
  double reconstruct_fraction = 0.0;
};

struct CorruptedExample {
  std::vector<int64_t> input;   // with EOS
  std::vector<int64_t> target;  // with EOS
};

// Corrupts `tokens` (no EOS). sentinel(i) gives the id of <extra_id_i>; `max_sentinels`
// bounds the spans. Lines shorter than 2 tokens have nothing to hide: the input is the
// line, the target just the closing sentinel. Deterministic in (tokens, seed).
CorruptedExample span_corrupt(const std::vector<int64_t>& tokens, uint64_t seed, const SpanCorruptionOptions& options,
                              const std::function<int64_t(int)>& sentinel, int max_sentinels, int64_t eos_id);

// The same corrupted input with the whole line (and EOS) as the target.
CorruptedExample reconstruct_example(const std::vector<int64_t>& tokens, uint64_t seed,
                                     const SpanCorruptionOptions& options, const std::function<int64_t(int)>& sentinel,
                                     int max_sentinels, int64_t eos_id);

struct PretrainOptions {
  std::filesystem::path corpus;     // text, one line per example (blank lines skipped)
  std::filesystem::path tokenizer;  // an existing spiece.model; empty: train one (below)
  std::vector<std::filesystem::path> tokenizer_text;  // text files the tokenizer is trained on
  int vocab_size = 1000;            // SentencePiece pieces when training a tokenizer (+100 sentinels)
  std::filesystem::path out_dir;
  model::T5Config config;           // vocab_size / pad / eos are set from the tokenizer
  SpanCorruptionOptions corruption;
  int64_t max_input_len = 128;      // tokens of a corpus line kept (before corruption)
  double valid_fraction = 0.02;     // lines held back for validation (fixed corruption)
  int64_t max_valid_lines = 512;
  LoopOptions loop;                 // work_dir and settings are filled in by pretrain
  std::string device = "cpu";
  io::DType save_dtype = io::DType::F32;  // of model.safetensors: F32, BF16 or F16
  bool force = false;               // replace an existing OUT_DIR
  std::function<void(const std::string&)> note;  // set-up messages (tokenizer, corpus)
};

struct PretrainResult {
  std::filesystem::path out_dir;
  LoopResult loop;
  int64_t train_lines = 0;
  int64_t valid_lines = 0;
  int64_t parameters = 0;
  int64_t vocab_size = 0;
  uint64_t bytes_on_disk = 0;  // config.json + model.safetensors + spiece.model
};

// Throws Error{exists} when out_dir exists and !force (before any work), Error{usage} for
// bad options, Error{invalid} for an empty corpus.
PretrainResult pretrain(const PretrainOptions& options);

}  // namespace gaggle::train
