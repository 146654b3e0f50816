#pragma once
// Batching and rank-classification scoring shared by train and eval (issue #3, item 3;
// design.md §2 "Evaluation"): each answer choice (with EOS) is scored by teacher
// forcing; score = mean token cross-entropy over the choice's tokens; the lowest wins.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/base_model.h"

namespace gaggle::model {

// A right-padded batch on the CPU: input_ids [B,S] int64 padded with pad_id,
// attention_mask [B,S] int64 (1 real, 0 pad), labels [B,L] int64 padded with -100.
// Token id lists are used as given (callers append EOS). Empty targets give an
// all -100 row; an empty input is an Error{invalid}. With no targets, labels is undefined.
struct Batch {
  at::Tensor input_ids, attention_mask, labels;
};
// Rows right-padded with `pad` into [rows.size(), longest] int64 on the CPU.
at::Tensor pad_rows(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad);

Batch make_batch(const std::vector<std::vector<std::int64_t>>& inputs,
                 const std::vector<std::vector<std::int64_t>>& targets, std::int64_t pad_id);

// The score of every choice given its input (lower wins): result[b][c] for choices[b][c]
// (choices may differ in number and length per input) — T5: the mean token NLL, each
// input encoded once; a causal LM: the summed NLL (BaseModel::rank_classification_nll).
// Runs under InferenceMode; the model's adapters are applied as attached.
// Throws Error{invalid} if inputs and choices differ in length or a choice is empty.
std::vector<std::vector<double>> rank_classification_nll(BaseModel& model,
                                                         const std::vector<std::vector<std::int64_t>>& inputs,
                                                         const std::vector<std::vector<std::vector<std::int64_t>>>& choices,
                                                         const RankOptions& options = {});

// argmin per row (ties: the first).
std::vector<std::int64_t> rank_predictions(const std::vector<std::vector<double>>& nll);

// Per-sequence mean of a [B,L] token NLL over labels != -100 (0 for an empty row).
at::Tensor sequence_mean_nll(const at::Tensor& token_nll, const at::Tensor& labels);

// The checks every rank_classification_nll does first (Error{invalid}).
void check_rank_inputs(const std::vector<std::vector<std::int64_t>>& inputs,
                       const std::vector<std::vector<std::vector<std::int64_t>>>& choices);
// Chunks of whole inputs [begin, end) holding at most max_rows choices each (at least one input).
std::vector<std::pair<std::size_t, std::size_t>> rank_chunks(const std::vector<std::vector<std::vector<std::int64_t>>>& choices,
                                                              std::int64_t max_rows);

}  // namespace gaggle::model
