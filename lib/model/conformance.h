#pragma once
// Runs a golden conformance case (golden/README.md "case.json": T5, Llama) through the
// model: what `gaggle debug forward` writes (issue #3, item 7; issue #14).
#include <nlohmann/json.hpp>

namespace gaggle::model {

class T5ModelImpl;
class LlamaModelImpl;

// Reads input_ids, attention_mask and (each optional) decoder_input_ids, labels,
// rank_classification.choices, greedy.max_new_tokens from `case_json` and returns the
// same keys computed here: encoder_last_hidden_state [B,S,d], logits [B,T,V],
// label_logits, label_token_logprobs (null at -100), label_nll_sum, label_nll_mean,
// hf_loss_batch, rank_classification {token_logprobs, nll_sum, nll_mean, pred_by_sum,
// pred_by_mean}, greedy {max_new_tokens, output_ids, output_ids_ignore_eos}.
// Floats are the exact float32 results. `source` names the case in errors
// (Error{invalid} for a missing or ill-shaped field).
nlohmann::json run_t5_case(T5ModelImpl& model, const nlohmann::json& case_json, const std::string& source);

// A Llama case, in either of two shapes (the keys written mirror the case's):
// - Hugging Face's (golden/llama-tiny): input_ids [B,S], optional attention_mask and
//   position_ids [B,S], optional greedy.max_new_tokens (default 5) -> logits [B,S,V] and
//   greedy {max_new_tokens, new_tokens (eos-stopped), new_tokens_ignore_eos}, each row's
//   greedy run on its unpadded ids alone.
// - llama2.c's (golden/llama-stories260k): "cases": [{name, input_ids [T]}: one causal
//   sequence -> {name, input_ids, logits [T,V], argmax [T]}; {name, start, steps[,
//   input_ids]}: greedy decoding of `steps` positions from `start` -> {name, start,
//   steps, input_ids (fed), generated_ids (argmax at each fed position), logits} where
//   logits are teacher-forced on the case's own input_ids when it records them (so
//   they compare even if a greedy path diverged), else on the fed ids}.
nlohmann::json run_llama_case(LlamaModelImpl& model, const nlohmann::json& case_json, const std::string& source);

}  // namespace gaggle::model
