#pragma once
// What train-expert and train-gate share: batches of tokenized examples, the summed
// token loss of a micro-batch, validation, and LoRA attached to a T5 model.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bundle/lora_scaling.h"
#include "model/t5.h"
#include "peft/lora.h"
#include "train/dataset.h"
#include "train/loop.h"

namespace gaggle::train::detail {

int64_t target_tokens(const TokenizedData& data, const std::vector<int64_t>& indices);

// Summed token NLL of the examples (teacher forcing) and the real tokens processed.
MicroBatchLoss batch_nll(model::T5ModelImpl& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                         int64_t pad_id);

// Token-averaged loss over `data`, and rank-classification accuracy when it has choices.
ValidResult validate(model::T5ModelImpl& model, const TokenizedData& data, int64_t batch_size, int64_t pad_id);

// Fresh LoRA on the selected linears (A drawn from torch's generator: seed it first).
peft::LoraSet make_lora(model::T5ModelImpl& model, const std::string& targets, const peft::LoraOptions& options);
// LoRA shaped after a saved expert's tensors (each module's rank from its lora_A, its
// scale from the manifest's scaling); every module must be a linear of the model with
// matching widths.
peft::LoraSet lora_for_tensors(model::T5ModelImpl& model, const std::map<std::string, at::Tensor>& tensors,
                               const bundle::LoraScaling& scaling, const std::string& source);
// Attaches every module of `lora` to `model` (and moves it to the model's device).
void attach(model::T5ModelImpl& model, peft::LoraSet& lora);

// Mean input activation per module over `indices` of `data` (teacher forcing through the
// model as attached): encoder modules average over real input tokens, decoder modules
// over real target positions; then the mean over examples.
std::map<std::string, at::Tensor> average_activations(model::T5ModelImpl& model, peft::LoraSet& lora,
                                                      const TokenizedData& data, const std::vector<int64_t>& indices,
                                                      int64_t batch_size, int64_t pad_id);

// Mean-pooled encoder output of each example's input: [n, d_model] float32 on the CPU.
at::Tensor encoder_embeddings(model::T5ModelImpl& model, const TokenizedData& data, const std::vector<int64_t>& indices,
                              int64_t batch_size, int64_t pad_id);

}  // namespace gaggle::train::detail
