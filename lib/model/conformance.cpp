#include "model/conformance.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "io/error.h"
#include "model/llama.h"
#include "model/scoring.h"
#include "model/t5.h"

namespace gaggle::model {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad_case(const std::string& source, const std::string& what) {
  throw_error(ErrorCode::invalid, "model", source + ": " + what,
              "a case holds input_ids and attention_mask as [B,S] lists (golden/README.md, case.json)");
}

void flatten(const json& j, std::size_t depth, std::vector<std::int64_t>& shape, std::vector<double>& values,
             const std::string& source, const std::string& key) {
  if (!j.is_array()) {
    if (depth != shape.size() && !shape.empty()) bad_case(source, "'" + key + "' is not rectangular");
    if (!j.is_number()) bad_case(source, "'" + key + "' holds a non-number");
    if (shape.empty() && depth > 0) bad_case(source, "'" + key + "' is not rectangular");
    values.push_back(j.get<double>());
    return;
  }
  if (depth == shape.size()) {
    if (!values.empty()) bad_case(source, "'" + key + "' is not rectangular");
    shape.push_back(static_cast<std::int64_t>(j.size()));
  } else if (depth > shape.size() || shape[depth] != static_cast<std::int64_t>(j.size())) {
    bad_case(source, "'" + key + "' is not rectangular");
  }
  for (const auto& x : j) flatten(x, depth + 1, shape, values, source, key);
}

at::Tensor int_tensor(const json& j, const std::string& source, const std::string& key, std::int64_t dims) {
  std::vector<std::int64_t> shape;
  std::vector<double> values;
  flatten(j, 0, shape, values, source, key);
  if (static_cast<std::int64_t>(shape.size()) != dims)
    bad_case(source, "'" + key + "' must be a " + std::to_string(dims) + "-dimensional list");
  std::vector<std::int64_t> ints(values.begin(), values.end());
  return at::tensor(ints, at::kLong).view(shape);
}

json to_json(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).contiguous();
  if (c.dim() == 0) return c.scalar_type() == at::kLong ? json(c.item<std::int64_t>()) : json(static_cast<double>(c.item<float>()));
  json out = json::array();
  for (std::int64_t i = 0; i < c.size(0); ++i) out.push_back(to_json(c[i]));
  return out;
}

// log p of each label, null where the label is -100.
json token_logprobs_json(const at::Tensor& nll, const at::Tensor& labels) {
  at::Tensor n = nll.to(at::kCPU);
  json out = json::array();
  for (std::int64_t b = 0; b < labels.size(0); ++b) {
    json row = json::array();
    for (std::int64_t i = 0; i < labels.size(1); ++i)
      row.push_back(labels[b][i].item<std::int64_t>() == -100 ? json(nullptr) : json(static_cast<double>(-n[b][i].item<float>())));
    out.push_back(row);
  }
  return out;
}

const json* find_key(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

json run_case(T5ModelImpl& model, const json& c, const std::string& source);
json run_llama(LlamaModelImpl& model, const json& c, const std::string& source);

}  // namespace

json run_llama_case(LlamaModelImpl& model, const json& c, const std::string& source) {
  try {
    return run_llama(model, c, source);
  } catch (const c10::Error& e) {
    throw_error(ErrorCode::invalid, "model", source + ": " + e.what_without_backtrace(),
                "check the shapes of the case's id lists against golden/README.md");
  }
}

json run_t5_case(T5ModelImpl& model, const json& c, const std::string& source) {
  try {
    return run_case(model, c, source);
  } catch (const c10::Error& e) {  // LibTorch's errors enter here, once, without the backtrace
    throw_error(ErrorCode::invalid, "model", source + ": " + e.what_without_backtrace(),
                "check the shapes of the case's id lists against golden/README.md");
  }
}

namespace {

json run_case(T5ModelImpl& model, const json& c, const std::string& source) {
  if (!c.is_object()) bad_case(source, "not a JSON object");
  const json* ids_j = find_key(c, "input_ids");
  const json* mask_j = find_key(c, "attention_mask");
  if (!ids_j) bad_case(source, "missing 'input_ids'");
  at::Tensor input_ids = int_tensor(*ids_j, source, "input_ids", 2);
  at::Tensor mask = mask_j ? int_tensor(*mask_j, source, "attention_mask", 2) : at::ones_like(input_ids);
  if (!mask.sizes().equals(input_ids.sizes())) bad_case(source, "'attention_mask' and 'input_ids' differ in shape");
  if (input_ids.numel() > 0 && (input_ids.min().item<std::int64_t>() < 0 ||
                                input_ids.max().item<std::int64_t>() >= model.config().vocab_size))
    bad_case(source,
             "'input_ids' holds an id outside the vocabulary (" + std::to_string(model.config().vocab_size) + ")");
  const std::int64_t batch = input_ids.size(0);
  const auto& cfg = model.config();

  c10::InferenceMode guard;
  json out;
  out["format_version"] = 1;
  out["generated_with"] = {{"tool", "gaggle debug forward"}};
  at::Tensor enc = model.encode(input_ids, mask);
  out["encoder_last_hidden_state"] = to_json(enc);

  if (const json* dec_j = find_key(c, "decoder_input_ids")) {
    at::Tensor dec = int_tensor(*dec_j, source, "decoder_input_ids", 2);
    if (dec.size(0) != batch) bad_case(source, "'decoder_input_ids' has another batch size than 'input_ids'");
    out["logits"] = to_json(model.decode(dec, enc, mask));
  }

  if (const json* lab_j = find_key(c, "labels")) {
    at::Tensor labels = int_tensor(*lab_j, source, "labels", 2);
    if (labels.size(0) != batch) bad_case(source, "'labels' has another batch size than 'input_ids'");
    at::Tensor dec = shift_right(labels, cfg.decoder_start_token_id, cfg.pad_token_id);
    out["labels_decoder_input_ids"] = to_json(dec);
    out["label_logits"] = to_json(model.decode(dec, enc, mask));
    at::Tensor nll = model.token_nll_from_encoded(enc, mask, labels).to(at::kCPU);
    at::Tensor valid = (labels != -100).to(at::kFloat);
    out["label_token_logprobs"] = token_logprobs_json(nll, labels);
    out["label_nll_sum"] = to_json((nll * valid).sum(1));
    out["label_nll_mean"] = to_json(sequence_mean_nll(nll, labels));
    out["hf_loss_batch"] = to_json((nll * valid).sum() / valid.sum().clamp_min(1.0));
  }

  const json* rc_j = find_key(c, "rank_classification");
  if (rc_j && find_key(*rc_j, "choices")) {
    const json& ch = (*rc_j)["choices"];
    if (!ch.is_array()) bad_case(source, "'rank_classification.choices' must be a list of token id lists");
    std::vector<std::vector<std::int64_t>> choice_ids;
    for (const auto& x : ch) {
      if (!x.is_array() || x.empty())
        bad_case(source, "'rank_classification.choices' must hold non-empty token id lists");
      std::vector<std::int64_t> ids;
      for (const auto& v : x) {
        if (!v.is_number_integer()) bad_case(source, "'rank_classification.choices' holds a non-integer");
        ids.push_back(v.get<std::int64_t>());
      }
      choice_ids.push_back(ids);
    }
    const std::int64_t n_choices = static_cast<std::int64_t>(choice_ids.size());
    // The flattened batch of the reference: row b*C+c = input b with choice c.
    std::vector<std::vector<std::int64_t>> inputs;
    std::vector<std::vector<std::vector<std::int64_t>>> per_input;
    std::vector<std::vector<std::int64_t>> flat_targets;
    for (std::int64_t b = 0; b < batch; ++b) {
      std::vector<std::int64_t> in;
      for (std::int64_t s = 0; s < input_ids.size(1); ++s)
        if (mask[b][s].item<std::int64_t>() != 0) in.push_back(input_ids[b][s].item<std::int64_t>());
      inputs.push_back(in);
      per_input.push_back(choice_ids);
      for (const auto& cids : choice_ids) flat_targets.push_back(cids);
    }
    at::Tensor labels = make_batch(flat_targets, flat_targets, cfg.pad_token_id).labels;
    at::Tensor rows = at::arange(batch, at::kLong).repeat_interleave(n_choices);
    at::Tensor nll = model.token_nll_from_encoded(enc.index_select(0, rows.to(enc.device())), mask.index_select(0, rows), labels)
                         .to(at::kCPU);
    at::Tensor sums = (nll * (labels != -100).to(at::kFloat)).sum(1).view({batch, n_choices});
    auto means = rank_classification_nll(model, inputs, per_input);
    json rc;
    rc["labels"] = to_json(labels);
    rc["token_logprobs"] = token_logprobs_json(nll, labels);
    rc["nll_sum"] = to_json(sums);
    rc["nll_mean"] = means;
    rc["pred_by_sum"] = to_json(sums.argmin(1));
    rc["pred_by_mean"] = rank_predictions(means);
    out["rank_classification"] = rc;
  }

  std::int64_t max_new = 5;
  if (const json* g = find_key(c, "greedy"); g && find_key(*g, "max_new_tokens")) {
    if (!(*g)["max_new_tokens"].is_number_integer() || (*g)["max_new_tokens"].get<std::int64_t>() < 0)
      bad_case(source, "'greedy.max_new_tokens' must be a non-negative integer");
    max_new = (*g)["max_new_tokens"].get<std::int64_t>();
  }
  out["greedy"] = {{"max_new_tokens", max_new},
                   {"output_ids", to_json(model.greedy(input_ids, mask, max_new, true))},
                   {"output_ids_ignore_eos", to_json(model.greedy(input_ids, mask, max_new, false))}};
  return out;
}

}  // namespace

namespace {

void check_vocab(const at::Tensor& ids, std::int64_t vocab, const std::string& source, const std::string& key) {
  if (ids.numel() > 0 && (ids.min().item<std::int64_t>() < 0 || ids.max().item<std::int64_t>() >= vocab))
    bad_case(source, "'" + key + "' holds an id outside the vocabulary (" + std::to_string(vocab) + ")");
}

// Hugging Face's shape: a padded batch.
json run_llama_batch(LlamaModelImpl& model, const json& c, const std::string& source) {
  at::Tensor input_ids = int_tensor(c["input_ids"], source, "input_ids", 2);
  const json* mask_j = find_key(c, "attention_mask");
  const json* pos_j = find_key(c, "position_ids");
  at::Tensor mask = mask_j ? int_tensor(*mask_j, source, "attention_mask", 2) : at::ones_like(input_ids);
  if (!mask.sizes().equals(input_ids.sizes())) bad_case(source, "'attention_mask' and 'input_ids' differ in shape");
  at::Tensor positions;
  if (pos_j) {
    positions = int_tensor(*pos_j, source, "position_ids", 2);
    if (!positions.sizes().equals(input_ids.sizes()))
      bad_case(source, "'position_ids' and 'input_ids' differ in shape");
    if (positions.numel() > 0 && positions.min().item<std::int64_t>() < 0)
      bad_case(source, "'position_ids' holds a negative position");
  }
  check_vocab(input_ids, model.config().vocab_size, source, "input_ids");
  std::int64_t max_new = 5;
  if (const json* g = find_key(c, "greedy"); g && find_key(*g, "max_new_tokens")) {
    if (!(*g)["max_new_tokens"].is_number_integer() || (*g)["max_new_tokens"].get<std::int64_t>() < 0)
      bad_case(source, "'greedy.max_new_tokens' must be a non-negative integer");
    max_new = (*g)["max_new_tokens"].get<std::int64_t>();
  }
  c10::InferenceMode guard;
  json out;
  out["logits"] = to_json(model.forward(input_ids, mask, positions));
  json stopped = json::array(), ignoring = json::array();
  for (std::int64_t b = 0; b < input_ids.size(0); ++b) {
    at::Tensor row = input_ids[b].masked_select(mask[b] != 0);
    if (row.numel() == 0) bad_case(source, "row " + std::to_string(b) + " of 'attention_mask' has no real token");
    stopped.push_back(to_json(model.greedy(row, max_new, true)));
    ignoring.push_back(to_json(model.greedy(row, max_new, false)));
  }
  out["greedy"] = {{"max_new_tokens", max_new}, {"new_tokens", stopped}, {"new_tokens_ignore_eos", ignoring}};
  return out;
}

// llama2.c's shape: named single sequences, teacher-forced or greedy.
json run_llama_sequence(LlamaModelImpl& model, const json& c, const std::string& source) {
  const std::string name = c.contains("name") && c["name"].is_string() ? c["name"].get<std::string>() : "";
  const std::string where = source + ": case '" + name + "'";
  const std::int64_t vocab = model.config().vocab_size;
  json out;
  out["name"] = name;
  auto logits_of = [&](const at::Tensor& ids) { return model.forward(ids.unsqueeze(0)).squeeze(0); };
  if (const json* start_j = find_key(c, "start")) {
    at::Tensor start = int_tensor(*start_j, where, "start", 1);
    const json* steps_j = find_key(c, "steps");
    if (!steps_j || !steps_j->is_number_integer() || steps_j->get<std::int64_t>() < 1)
      bad_case(where, "'steps' must be a positive integer");
    const std::int64_t steps = steps_j->get<std::int64_t>();
    if (start.numel() < 1 || start.numel() > steps) bad_case(where, "'start' must hold 1..steps ids");
    check_vocab(start, vocab, where, "start");
    at::Tensor own = model.greedy(start, steps - start.numel() + 1, false);
    at::Tensor fed = at::cat({start, own.slice(0, 0, own.numel() - 1)});
    at::Tensor logits = logits_of(fed);
    at::Tensor forced = logits;
    if (const json* ids_j = find_key(c, "input_ids")) {
      at::Tensor recorded = int_tensor(*ids_j, where, "input_ids", 1);
      check_vocab(recorded, vocab, where, "input_ids");
      forced = logits_of(recorded);
    }
    out["start"] = to_json(start);
    out["steps"] = steps;
    out["input_ids"] = to_json(fed);
    out["generated_ids"] = to_json(logits.argmax(-1));
    out["logits"] = to_json(forced);
    return out;
  }
  const json* ids_j = find_key(c, "input_ids");
  if (!ids_j) bad_case(where, "needs 'input_ids' (a sequence) or 'start' and 'steps' (greedy)");
  at::Tensor ids = int_tensor(*ids_j, where, "input_ids", 1);
  if (ids.numel() < 1) bad_case(where, "'input_ids' is empty");
  check_vocab(ids, vocab, where, "input_ids");
  at::Tensor logits = logits_of(ids);
  out["input_ids"] = to_json(ids);
  out["logits"] = to_json(logits);
  out["argmax"] = to_json(logits.argmax(-1));
  return out;
}

json run_llama(LlamaModelImpl& model, const json& c, const std::string& source) {
  if (!c.is_object()) bad_case(source, "not a JSON object");
  json out;
  out["format_version"] = 1;
  out["generated_with"] = {{"tool", "gaggle debug forward"}};
  if (const json* cases = find_key(c, "cases")) {
    if (!cases->is_array()) bad_case(source, "'cases' must be a list of cases");
    c10::InferenceMode guard;
    out["cases"] = json::array();
    for (const auto& one : *cases) {
      if (!one.is_object()) bad_case(source, "'cases' holds a non-object");
      out["cases"].push_back(run_llama_sequence(model, one, source));
    }
    return out;
  }
  if (!find_key(c, "input_ids")) bad_case(source, "missing 'input_ids' (or 'cases')");
  json batch = run_llama_batch(model, c, source);
  out.update(batch);
  return out;
}

}  // namespace

}  // namespace gaggle::model
