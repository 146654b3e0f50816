#pragma once
// Runs a golden conformance case (golden/README.md "case.json", T5) through the model:
// what `gaggle debug forward` writes (issue #3, item 7).
#include <nlohmann/json.hpp>

namespace gaggle::model {

class T5ModelImpl;

// Reads input_ids, attention_mask and (each optional) decoder_input_ids, labels,
// rank_classification.choices, greedy.max_new_tokens from `case_json` and returns the
// same keys computed here: encoder_last_hidden_state [B,S,d], logits [B,T,V],
// label_logits, label_token_logprobs (null at -100), label_nll_sum, label_nll_mean,
// hf_loss_batch, rank_classification {token_logprobs, nll_sum, nll_mean, pred_by_sum,
// pred_by_mean}, greedy {max_new_tokens, output_ids, output_ids_ignore_eos}.
// Floats are the exact float32 results. `source` names the case in errors
// (Error{invalid} for a missing or ill-shaped field).
nlohmann::json run_t5_case(T5ModelImpl& model, const nlohmann::json& case_json, const std::string& source);

}  // namespace gaggle::model
