// T5 as a BaseModel (base_model.h): the prompt is the encoder input, the target the
// decoder's labels. These are the computations train and eval ran on T5 before the
// interface existed, unchanged (the golden and routing tests pin them).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "model/scoring.h"
#include "model/t5.h"

namespace gaggle::model {
namespace {

// Masked mean over positions: hidden [B, S, d], mask [B, S] -> [B, d].
at::Tensor masked_mean(const at::Tensor& hidden, const at::Tensor& mask) {
  auto m = mask.to(hidden.device(), at::kFloat).unsqueeze(-1);
  return (hidden.to(at::kFloat) * m).sum(1) / m.sum(1).clamp_min(1.0);
}

bool reads_encoder_rows(const std::string& name) {
  return name.rfind("encoder.", 0) == 0 || name.find("EncDecAttention.k") != std::string::npos ||
         name.find("EncDecAttention.v") != std::string::npos;
}

}  // namespace

at::Tensor T5ModelImpl::target_nll(const TokenRows& prompts, const TokenRows& targets) {
  Batch batch = make_batch(prompts, targets, config_.pad_token_id);
  return token_nll(batch.input_ids, batch.attention_mask, batch.labels);
}

std::vector<std::vector<double>> T5ModelImpl::rank_classification_nll(const TokenRows& inputs,
                                                                      const std::vector<TokenRows>& choices,
                                                                      const RankOptions& options) {
  check_rank_inputs(inputs, choices);
  c10::InferenceMode guard;
  std::vector<std::vector<double>> out(inputs.size());
  // Chunks of whole inputs: each input is encoded once and its encoding repeated per choice.
  for (const auto& [start, end] : rank_chunks(choices, options.max_rows)) {
    TokenRows in(inputs.begin() + start, inputs.begin() + end);
    Batch enc_batch = make_batch(in, {}, config_.pad_token_id);
    at::Tensor enc = encode(enc_batch.input_ids, enc_batch.attention_mask);
    std::vector<std::int64_t> repeat_index;
    TokenRows targets;
    for (std::size_t b = start; b < end; ++b)
      for (const auto& choice : choices[b]) {
        repeat_index.push_back(static_cast<std::int64_t>(b - start));
        targets.push_back(choice);
      }
    if (targets.empty()) continue;
    at::Tensor idx = at::tensor(repeat_index, at::kLong).to(enc.device());
    at::Tensor labels = pad_rows(targets, -100);
    at::Tensor nll = token_nll_from_encoded(enc.index_select(0, idx),
                                            enc_batch.attention_mask.to(enc.device()).index_select(0, idx), labels);
    at::Tensor mean = sequence_mean_nll(nll, labels).to(at::kCPU, at::kDouble);
    auto acc = mean.accessor<double, 1>();
    std::int64_t row = 0;
    for (std::size_t b = start; b < end; ++b)
      for (std::size_t c = 0; c < choices[b].size(); ++c) out[b].push_back(acc[row++]);
  }
  return out;
}

TokenRows T5ModelImpl::generate(const TokenRows& prompts, std::int64_t max_new_tokens) {
  Batch batch = make_batch(prompts, {}, config_.pad_token_id);
  // On the host: the rows are read through data_ptr (a GPU's tensor would be device memory).
  at::Tensor out =
      greedy(batch.input_ids, batch.attention_mask, max_new_tokens, /*stop_at_eos=*/true).to(at::kCPU).contiguous();
  TokenRows rows;
  for (std::int64_t b = 0; b < out.size(0); ++b) {
    at::Tensor row = out[b].slice(0, 1).contiguous();  // without decoder_start_token_id
    rows.emplace_back(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel());
  }
  return rows;
}

at::Tensor T5ModelImpl::prompt_embeddings(const TokenRows& prompts) {
  Batch batch = make_batch(prompts, {}, config_.pad_token_id);
  return masked_mean(encode(batch.input_ids, batch.attention_mask), batch.attention_mask);
}

std::vector<at::Tensor> T5ModelImpl::row_masks(const TokenRows& prompts, const TokenRows& targets) const {
  Batch batch = make_batch(prompts, targets, config_.pad_token_id);
  return {batch.attention_mask, batch.labels.ne(-100)};
}

std::size_t T5ModelImpl::row_mask_of(const std::string& linear_name) const {
  return reads_encoder_rows(linear_name) ? 0 : 1;
}

}  // namespace gaggle::model
