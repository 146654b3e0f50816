#pragma once
// What train-expert and train-gate share: batches of tokenized examples, the summed
// token loss of a micro-batch, validation, and LoRA attached to a base model of any
// architecture (model/base_model.h).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bundle/lora_scaling.h"
#include "model/base_model.h"
#include "peft/lora.h"
#include "train/dataset.h"
#include "train/loop.h"

namespace gaggle::train::detail {

int64_t target_tokens(const TokenizedData& data, const std::vector<int64_t>& indices);

// Summed token NLL of the examples (teacher forcing) and the real tokens processed.
MicroBatchLoss batch_nll(model::BaseModel& model, const TokenizedData& data, const std::vector<int64_t>& indices);

// Token-averaged loss over `data`, and rank-classification accuracy when it has choices.
ValidResult validate(model::BaseModel& model, const TokenizedData& data, int64_t batch_size);

// Fresh LoRA on the selected linears (A drawn from torch's generator: seed it first).
peft::LoraSet make_lora(model::BaseModel& model, const std::string& targets, const peft::LoraOptions& options);
// LoRA shaped after a saved expert's tensors (each module's rank from its lora_A, its
// scale from the manifest's scaling); every module must be a linear of the model with
// matching widths.
peft::LoraSet lora_for_tensors(model::BaseModel& model, const std::map<std::string, at::Tensor>& tensors,
                               const bundle::LoraScaling& scaling, const std::string& source);
// Attaches every module of `lora` to `model` (and moves it to the model's device).
void attach(model::BaseModel& model, peft::LoraSet& lora);

// Mean input activation per module over `indices` of `data` (teacher forcing through the
// model as attached), over the real tokens the module reads (BaseModel::row_masks: T5's
// encoder modules the input tokens, its decoder modules the target positions; a causal
// LM's modules prompt ++ target, as training sees them); then the mean over examples.
std::map<std::string, at::Tensor> average_activations(model::BaseModel& model, peft::LoraSet& lora,
                                                      const TokenizedData& data, const std::vector<int64_t>& indices,
                                                      int64_t batch_size);

// Each example's retrieval query (BaseModel::prompt_embeddings: T5's mean-pooled encoder
// output; a causal LM's final hidden state mean-pooled over the prompt): [n, d_model]
// float32 on the CPU.
at::Tensor prompt_embeddings(model::BaseModel& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                             int64_t batch_size);

}  // namespace gaggle::train::detail
