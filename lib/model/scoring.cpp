#include "model/scoring.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "io/error.h"

namespace gaggle::model {

at::Tensor pad_rows(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad) {
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.size());
  at::Tensor t = at::full({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(width)}, pad, at::kLong);
  auto acc = t.accessor<std::int64_t, 2>();
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[i].size(); ++j) acc[i][j] = rows[i][j];
  return t;
}


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

void check_rank_inputs(const std::vector<std::vector<std::int64_t>>& inputs,
                       const std::vector<std::vector<std::vector<std::int64_t>>>& choices) {
  if (inputs.size() != choices.size())
    throw_error(ErrorCode::invalid, "model",
                "rank classification: " + std::to_string(inputs.size()) + " inputs but " + std::to_string(choices.size()) +
                    " choice lists");
  for (std::size_t b = 0; b < choices.size(); ++b)
    for (std::size_t c = 0; c < choices[b].size(); ++c)
      if (choices[b][c].empty())
        throw_error(ErrorCode::invalid, "model",
                    "rank classification: choice " + std::to_string(c) + " of input " + std::to_string(b) + " is empty");
}

std::vector<std::pair<std::size_t, std::size_t>> rank_chunks(const std::vector<std::vector<std::vector<std::int64_t>>>& choices,
                                                              std::int64_t max_rows_option) {
  const std::size_t max_rows = static_cast<std::size_t>(std::max<std::int64_t>(1, max_rows_option));
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t start = 0;
  while (start < choices.size()) {
    std::size_t end = start, rows = 0;
    while (end < choices.size() && (end == start || rows + choices[end].size() <= max_rows)) rows += choices[end++].size();
    out.emplace_back(start, end);
    start = end;
  }
  return out;
}

std::vector<std::vector<double>> rank_classification_nll(BaseModel& model,
                                                         const std::vector<std::vector<std::int64_t>>& inputs,
                                                         const std::vector<std::vector<std::vector<std::int64_t>>>& choices,
                                                         const RankOptions& options) {
  return model.rank_classification_nll(inputs, choices, options);
}

std::vector<std::int64_t> rank_predictions(const std::vector<std::vector<double>>& nll) {
  std::vector<std::int64_t> out;
  for (const auto& row : nll)
    out.push_back(row.empty() ? -1 : static_cast<std::int64_t>(std::min_element(row.begin(), row.end()) - row.begin()));
  return out;
}

}  // namespace gaggle::model
