// Llama as a BaseModel (base_model.h): a causal LM reads each example as one row,
// prompt ++ target, right-padded (causal attention never lets a real token see the
// padding after it, so no position shift is needed), and is scored on the target only
// (causal_lm.h).
#include <ATen/ATen.h>
#include <algorithm>
#include <vector>
#include <c10/core/InferenceMode.h>

#include "io/error.h"
#include "model/causal_lm.h"
#include "model/llama.h"
#include "model/scoring.h"

namespace gaggle::model {
namespace {

struct Rows {
  at::Tensor ids, mask, prompt_mask, prompt_lengths, labels;  // labels only with targets
};

// prompt ++ target per row, right-padded.
Rows concat_rows(const TokenRows& prompts, const TokenRows* targets, std::int64_t pad_id) {
  if (targets && targets->size() != prompts.size())
    throw_error(ErrorCode::invalid, "model",
                "batch has " + std::to_string(prompts.size()) + " prompts but " + std::to_string(targets->size()) + " targets");
  TokenRows rows, ones, prompt_ones;
  std::vector<std::int64_t> lengths;
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty())
      throw_error(ErrorCode::invalid, "model", "prompt " + std::to_string(b) + " of the batch is empty", "start it with bos");
    rows.push_back(prompts[b]);
    if (targets) rows.back().insert(rows.back().end(), (*targets)[b].begin(), (*targets)[b].end());
    ones.emplace_back(rows.back().size(), 1);
    prompt_ones.emplace_back(prompts[b].size(), 1);
    lengths.push_back(static_cast<std::int64_t>(prompts[b].size()));
  }
  Rows r;
  r.ids = pad_rows(rows, pad_id);
  r.mask = pad_rows(ones, 0);
  r.prompt_mask = pad_rows(prompt_ones, 0);
  if (r.prompt_mask.size(1) < r.ids.size(1))
    r.prompt_mask = at::constant_pad_nd(r.prompt_mask, {0, r.ids.size(1) - r.prompt_mask.size(1)}, 0);
  r.prompt_lengths = at::tensor(lengths, at::kLong);
  if (targets) r.labels = pad_rows(*targets, -100);
  return r;
}

}  // namespace

at::Tensor LlamaModelImpl::target_nll(const TokenRows& prompts, const TokenRows& targets) {
  const Rows r = concat_rows(prompts, &targets, std::max<std::int64_t>(config_.pad_token_id, 0));
  at::Tensor h = hidden(r.ids, r.mask, {}, nullptr, r.prompt_mask);
  // The LM head only on the positions that predict a target token (V is the big width).
  at::Tensor rows = target_rows(h, r.prompt_lengths, r.labels.size(1));
  return target_token_nll(lm_logits(rows), r.labels);
}

std::vector<std::vector<double>> LlamaModelImpl::rank_classification_nll(const TokenRows& prompts,
                                                                         const std::vector<TokenRows>& choices,
                                                                         const RankOptions& options) {
  check_rank_inputs(prompts, choices);
  c10::InferenceMode guard;
  std::vector<std::vector<double>> out(prompts.size());
  for (const auto& [start, end] : rank_chunks(choices, options.max_rows)) {
    TokenRows row_prompts, row_choices;
    for (std::size_t b = start; b < end; ++b)
      for (const auto& choice : choices[b]) {
        row_prompts.push_back(prompts[b]);
        row_choices.push_back(choice);
      }
    if (row_choices.empty()) continue;
    at::Tensor sums = target_nll(row_prompts, row_choices).sum(1).to(at::kCPU, at::kDouble);
    auto acc = sums.accessor<double, 1>();
    std::int64_t row = 0;
    for (std::size_t b = start; b < end; ++b)
      for (std::size_t c = 0; c < choices[b].size(); ++c) out[b].push_back(acc[row++]);
  }
  return out;
}

// Every prompt at once: left-padded so that each ends in the last column, rotary
// positions counting real tokens only (cumsum(mask) - 1, as HF's generate does), one KV
// cache, then one token a step for the whole batch. A row stops after it emits eos (kept,
// as greedy() does); the batch stops when every row has.
TokenRows LlamaModelImpl::generate(const TokenRows& prompts, std::int64_t max_new_tokens) {
  c10::InferenceMode guard;
  const auto batch = static_cast<std::int64_t>(prompts.size());
  TokenRows out(prompts.size());
  if (batch == 0 || max_new_tokens <= 0) return out;
  std::size_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty())
      throw_error(ErrorCode::invalid, "model", "greedy decoding needs a prompt of at least one token", "start with bos");
    longest = std::max(longest, p.size());
  }
  const auto len = static_cast<std::int64_t>(longest);
  std::vector<std::int64_t> ids(prompts.size() * longest, std::max<std::int64_t>(config_.pad_token_id, 0));
  std::vector<std::int64_t> real(prompts.size() * longest, 0);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const std::size_t start = b * longest + (longest - prompts[b].size());
    std::copy(prompts[b].begin(), prompts[b].end(), ids.begin() + static_cast<std::ptrdiff_t>(start));
    std::fill_n(real.begin() + static_cast<std::ptrdiff_t>(start), prompts[b].size(), 1);
  }
  const at::Tensor ids_t = at::tensor(ids, at::kLong).reshape({batch, len}).to(device());
  const at::Tensor mask = at::tensor(real, at::kLong).reshape({batch, len}).to(device());
  at::Tensor positions = (mask.cumsum(1) - 1).clamp_min(0);
  LlamaKvCache cache;
  // The first step is the prompts: adapters that route per example see them (prompt_mask).
  at::Tensor logits = forward(ids_t, mask, positions, &cache, mask);
  at::Tensor next_position = positions.select(1, len - 1).unsqueeze(1) + 1;  // [B, 1]
  const at::Tensor one = at::ones({batch, 1}, mask.options());
  std::vector<bool> done(prompts.size(), false);
  std::size_t running = prompts.size();
  for (std::int64_t step = 0; step < max_new_tokens; ++step) {
    const at::Tensor next = logits.select(1, logits.size(1) - 1).argmax(-1).to(at::kCPU).contiguous();
    const std::int64_t* chosen = next.data_ptr<std::int64_t>();
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      if (done[b]) continue;
      out[b].push_back(chosen[b]);
      if (chosen[b] == config_.eos_token_id) {
        done[b] = true;
        --running;
      }
    }
    if (running == 0 || step + 1 == max_new_tokens) break;
    logits = forward(next.to(device()).reshape({batch, 1}), one, next_position, &cache);
    next_position = next_position + 1;
  }
  return out;
}

at::Tensor LlamaModelImpl::prompt_embeddings(const TokenRows& prompts) {
  const Rows r = concat_rows(prompts, nullptr, std::max<std::int64_t>(config_.pad_token_id, 0));
  at::Tensor h = hidden(r.ids, r.mask);
  at::Tensor m = r.mask.to(h.device(), at::kFloat).unsqueeze(-1);
  return (h.to(at::kFloat) * m).sum(1) / m.sum(1).clamp_min(1.0);
}

std::vector<at::Tensor> LlamaModelImpl::row_masks(const TokenRows& prompts, const TokenRows& targets) const {
  return {concat_rows(prompts, &targets, 0).mask};
}

std::size_t LlamaModelImpl::row_mask_of(const std::string&) const { return 0; }

}  // namespace gaggle::model
