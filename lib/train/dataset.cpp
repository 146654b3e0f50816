#include "train/dataset.h"

#include <algorithm>
#include <cmath>

#include "io/error.h"
#include "text/tokenizer.h"
#include "train/data_order.h"
#include "train/detail/room.h"

namespace gaggle::train {
namespace {

}  // namespace

TokenizedData tokenize_examples(const std::vector<tasks::Example>& examples, const text::Tokenizer& tokenizer,
                                const TokenizeOptions& options, const std::string& source) {
  if (options.max_input_len < 2) throw_error(ErrorCode::usage, kRoom, "--max-input-len must be at least 2");
  if (options.max_target_len < 2) throw_error(ErrorCode::usage, kRoom, "--max-target-len must be at least 2");
  if (examples.empty())
    throw_error(ErrorCode::invalid, kRoom, source + ": no examples", "a training file needs at least one JSON line");
  model::TokenFormat format;
  format.eos_id = tokenizer.eos_id();
  if (options.format) format = *options.format;
  TokenizedData out;
  out.has_choices = true;
  out.examples.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    const std::string where = source + ": example " + std::to_string(i + 1);
    TokenizedExample t;
    t.input = format.prompt(tokenizer.encode(e.input, /*add_eos=*/false));
    if (t.input.size() <= 1) throw_error(ErrorCode::invalid, kRoom, where + ": field 'input' is empty");
    if (static_cast<int64_t>(t.input.size()) > options.max_input_len) {
      t.input = format.truncate_prompt(std::move(t.input), options.max_input_len);
      ++out.truncated_inputs;
    }
    t.target = format.target(tokenizer.encode(e.target, /*add_eos=*/false));
    if (t.target.size() <= 1) throw_error(ErrorCode::invalid, kRoom, where + ": field 'target' is empty");
    auto check_len = [&](const std::vector<int64_t>& ids, const std::string& field) {
      if (static_cast<int64_t>(ids.size()) > options.max_target_len)
        throw_error(ErrorCode::invalid, kRoom,
                    where + ": field '" + field + "' is " + std::to_string(ids.size()) + " tokens, longer than --max-target-len " +
                        std::to_string(options.max_target_len),
                    "raise --max-target-len or shorten the targets");
    };
    check_len(t.target, "target");
    for (size_t c = 0; c < e.choices.size(); ++c) {
      t.choices.push_back(format.target(tokenizer.encode(e.choices[c], /*add_eos=*/false)));
      check_len(t.choices.back(), "choices[" + std::to_string(c) + "]");
    }
    t.label = e.label;
    if (!e.is_classification()) out.has_choices = false;
    out.examples.push_back(std::move(t));
  }
  return out;
}

std::vector<int64_t> sample_indices(int64_t size, int64_t n, uint64_t seed) {
  auto p = DataOrder::permutation(size, seed ^ 0x5A17ull, 0);
  if (n < size) p.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
  return p;
}

std::pair<TokenizedData, TokenizedData> split_holdout(const TokenizedData& data, double fraction, uint64_t seed) {
  const auto n = static_cast<int64_t>(data.examples.size());
  int64_t hold = n < 2 ? 0 : std::max<int64_t>(1, std::llround(fraction * static_cast<double>(n)));
  hold = std::min(hold, n - 1);
  auto p = DataOrder::permutation(n, seed ^ 0x4011ull, 0);
  std::vector<bool> is_valid(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < hold; ++i) is_valid[static_cast<size_t>(p[static_cast<size_t>(i)])] = true;
  TokenizedData train, valid;
  train.has_choices = valid.has_choices = data.has_choices;
  train.truncated_inputs = data.truncated_inputs;
  for (int64_t i = 0; i < n; ++i)
    (is_valid[static_cast<size_t>(i)] ? valid : train).examples.push_back(data.examples[static_cast<size_t>(i)]);
  if (valid.examples.empty()) valid.has_choices = false;
  return {std::move(train), std::move(valid)};
}

}  // namespace gaggle::train
