#pragma once
// How a base reads an example's text as tokens (issue #14; design.md §6). Torch-free:
// train's tokenization and eval's share it before any model is loaded.
//
//   T5 (encoder-decoder): prompt "input </s>", target "target </s>" (HF's T5Tokenizer).
//   Llama (decoder-only): prompt "<s> input", target "target </s>": the model reads
//     <s> input target </s> and learns / is scored on "target </s>" only.
// The ids come from config.json (bos_token_id, eos_token_id) for decoder-only bases and
// from the tokenizer for T5, as Hugging Face does for each.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "model/architecture.h"

namespace gaggle::model {

struct TokenFormat {
  Architecture architecture = Architecture::t5;
  std::int64_t bos_id = -1;   // prepended to every prompt; -1: none (T5)
  std::int64_t eos_id = 1;    // appended to every target and choice
  bool prompt_eos = true;     // T5's encoder input ends with EOS too

  // `text_ids`: the tokenizer's ids of the text alone (no special tokens).
  std::vector<std::int64_t> prompt(std::vector<std::int64_t> text_ids) const;
  std::vector<std::int64_t> target(std::vector<std::int64_t> text_ids) const;
  // A prompt cut to at most `max_tokens` (>= 2): the first tokens, keeping a final EOS
  // where the format ends prompts with one. Unchanged when short enough.
  std::vector<std::int64_t> truncate_prompt(std::vector<std::int64_t> prompt, std::int64_t max_tokens) const;
};

struct LlamaConfig;
TokenFormat t5_token_format(std::int64_t tokenizer_eos_id);
TokenFormat llama_token_format(const LlamaConfig& config);

// The format of the base at `base_dir` (its config.json); `tokenizer_eos_id` is T5's EOS.
// A directory without config.json gets T5's (callers check data before loading the
// model, whose load then names the missing file). Throws what read_architecture /
// read_llama_config throw.
TokenFormat read_token_format(const std::filesystem::path& base_dir, std::int64_t tokenizer_eos_id);

}  // namespace gaggle::model
