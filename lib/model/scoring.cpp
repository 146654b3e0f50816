#include "model/scoring.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "io/error.h"
#include "model/t5.h"

namespace gaggle::model {

namespace {

at::Tensor pad_rows(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad) {
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.size());
  at::Tensor t = at::full({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(width)}, pad, at::kLong);
  auto acc = t.accessor<std::int64_t, 2>();
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[i].size(); ++j) acc[i][j] = rows[i][j];
  return t;
}

}  // namespace

Batch make_batch(const std::vector<std::vector<std::int64_t>>& inputs,
                 const std::vector<std::vector<std::int64_t>>& targets, std::int64_t pad_id) {
  if (!targets.empty() && targets.size() != inputs.size())
    throw_error(ErrorCode::invalid, "model",
                "batch has " + std::to_string(inputs.size()) + " inputs but " + std::to_string(targets.size()) + " targets");
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].empty()) throw_error(ErrorCode::invalid, "model", "input " + std::to_string(i) + " of the batch is empty");
  Batch b;
  b.input_ids = pad_rows(inputs, pad_id);
  std::vector<std::vector<std::int64_t>> ones;
  for (const auto& r : inputs) ones.emplace_back(r.size(), 1);
  b.attention_mask = pad_rows(ones, 0);
  if (!targets.empty()) {
    b.labels = pad_rows(targets, -100);
    if (b.labels.size(1) == 0) b.labels = at::full({b.labels.size(0), 1}, -100, at::kLong);
  }
  return b;
}

at::Tensor sequence_mean_nll(const at::Tensor& token_nll, const at::Tensor& labels) {
  at::Tensor valid = (labels.to(token_nll.device()) != -100).to(token_nll.scalar_type());
  return (token_nll * valid).sum(1) / valid.sum(1).clamp_min(1.0);
}

std::vector<std::vector<double>> rank_classification_nll(T5ModelImpl& model,
                                                         const std::vector<std::vector<std::int64_t>>& inputs,
                                                         const std::vector<std::vector<std::vector<std::int64_t>>>& choices,
                                                         const RankOptions& options) {
  if (inputs.size() != choices.size())
    throw_error(ErrorCode::invalid, "model",
                "rank classification: " + std::to_string(inputs.size()) + " inputs but " + std::to_string(choices.size()) +
                    " choice lists");
  for (std::size_t b = 0; b < choices.size(); ++b)
    for (std::size_t c = 0; c < choices[b].size(); ++c)
      if (choices[b][c].empty())
        throw_error(ErrorCode::invalid, "model",
                    "rank classification: choice " + std::to_string(c) + " of input " + std::to_string(b) + " is empty");
  c10::InferenceMode guard;
  std::vector<std::vector<double>> out(inputs.size());
  const std::size_t max_rows = static_cast<std::size_t>(std::max<std::int64_t>(1, options.max_rows));
  // Chunks of whole inputs: each input is encoded once and its encoding repeated per choice.
  std::size_t start = 0;
  while (start < inputs.size()) {
    std::size_t end = start, rows = 0;
    while (end < inputs.size() && (end == start || rows + choices[end].size() <= max_rows)) rows += choices[end++].size();
    std::vector<std::vector<std::int64_t>> in(inputs.begin() + start, inputs.begin() + end);
    Batch enc_batch = make_batch(in, {}, model.config().pad_token_id);
    at::Tensor enc = model.encode(enc_batch.input_ids, enc_batch.attention_mask);
    std::vector<std::int64_t> repeat_index;
    std::vector<std::vector<std::int64_t>> targets;
    for (std::size_t b = start; b < end; ++b)
      for (const auto& choice : choices[b]) {
        repeat_index.push_back(static_cast<std::int64_t>(b - start));
        targets.push_back(choice);
      }
    if (!targets.empty()) {
      at::Tensor idx = at::tensor(repeat_index, at::kLong).to(enc.device());
      at::Tensor labels = pad_rows(targets, -100);
      at::Tensor nll = model.token_nll_from_encoded(enc.index_select(0, idx),
                                                    enc_batch.attention_mask.to(enc.device()).index_select(0, idx), labels);
      at::Tensor mean = sequence_mean_nll(nll, labels).to(at::kCPU, at::kDouble);
      auto acc = mean.accessor<double, 1>();
      std::int64_t row = 0;
      for (std::size_t b = start; b < end; ++b)
        for (std::size_t c = 0; c < choices[b].size(); ++c) out[b].push_back(acc[row++]);
    }
    start = end;
  }
  return out;
}

std::vector<std::int64_t> rank_predictions(const std::vector<std::vector<double>>& nll) {
  std::vector<std::int64_t> out;
  for (const auto& row : nll)
    out.push_back(row.empty() ? -1 : static_cast<std::int64_t>(std::min_element(row.begin(), row.end()) - row.begin()));
  return out;
}

}  // namespace gaggle::model
