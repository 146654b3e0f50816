#pragma once
// train-gate (issue #4, item 5): the post-hoc PHATGOOSE gate of an expert, plus what the
// baselines need, added to the expert's bundle in one run:
//   "<module>.gate"        [d_in]   trained with base and LoRA frozen (zero init;
//                                   out = W u + sigmoid(v . u) B A u alpha/r)
//   "<module>.avg_act"     [d_in]   mean input activation over up to 1000 training
//                                   examples through the expert's own model (LoRA on,
//                                   no gate): token mean per example, then example mean
//   "retrieval_embeddings" [n, d_model]  the base model's (no LoRA) retrieval query of up
//                                   to 1000 training inputs: T5 the encoder output
//                                   mean-pooled over the input; a decoder-only base the
//                                   final hidden state mean-pooled over the prompt tokens
// On a decoder-only base the average activations run over prompt ++ target, the tokens
// gate training reads (model/base_model.h).
// The manifest's method becomes "phatgoose"; the base must match the bundle's
// fingerprint. Checkpoints live in <parent>/.<EXPERT_DIR name>.gate/ while it runs.
#include <cstdint>
#include <filesystem>
#include <string>

#include "train/dataset.h"
#include "train/loop.h"

namespace gaggle::train {

inline constexpr const char* kRetrievalEmbeddings = "retrieval_embeddings";

struct GateOptions {
  std::filesystem::path base_dir;
  std::filesystem::path expert_dir;  // a bundle written by train-expert (rewritten in place)
  std::filesystem::path data;        // the expert's own training JSONL
  LoopOptions loop;                  // steps = 100 by default (set by the caller)
  TokenizeOptions tokenize;
  int64_t avg_act_examples = 1000;
  int64_t embed_examples = 1000;
  std::string device = "cpu";
};

struct GateResult {
  LoopResult loop;
  int64_t avg_act_examples = 0;
  int64_t embed_examples = 0;
  int64_t modules = 0;
};

GateResult train_gate(const GateOptions& options);

}  // namespace gaggle::train
