#pragma once
// Task data made ready for training: tokenized, checked against the length limits,
// split into train / validation. Torch-free.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/token_format.h"
#include "tasks/task_data.h"

namespace gaggle::text {
class Tokenizer;
}

namespace gaggle::train {

// Token ids in the base's format (model/token_format.h): T5 "input </s>", Llama "<s> input";
// targets and choices end with EOS.
struct TokenizedExample {
  std::vector<int64_t> input;                 // the prompt, truncated to max_input_len
  std::vector<int64_t> target;                // with EOS
  std::vector<std::vector<int64_t>> choices;  // with EOS; empty for generation data
  int label = -1;
};

struct TokenizeOptions {
  int64_t max_input_len = 512;   // longer inputs are cut (keeping the final EOS)
  int64_t max_target_len = 128;  // a longer target (or choice) is an Error: training on a cut target teaches the wrong answer
  std::optional<model::TokenFormat> format;  // the base's (read_token_format); empty: T5's with the tokenizer's EOS
};

struct TokenizedData {
  std::vector<TokenizedExample> examples;
  int64_t truncated_inputs = 0;  // how many inputs were cut
  bool has_choices = false;      // every example has choices + label
};

// Throws Error{invalid} naming `source` and the example (1-based, as in the file) for an
// empty input or target, or a target / choice longer than max_target_len; an empty set is
// an Error too.
TokenizedData tokenize_examples(const std::vector<tasks::Example>& examples, const text::Tokenizer& tokenizer,
                                const TokenizeOptions& options, const std::string& source);

// Holds back round(fraction * n) examples (at least 1 when n >= 2), chosen by `seed`;
// returns {train, valid}. With n < 2 the validation part is empty.
std::pair<TokenizedData, TokenizedData> split_holdout(const TokenizedData& data, double fraction, uint64_t seed);

// The first `n` examples of a seeded permutation (all when n >= size).
std::vector<int64_t> sample_indices(int64_t size, int64_t n, uint64_t seed);

}  // namespace gaggle::train
