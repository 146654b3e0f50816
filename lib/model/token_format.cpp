#include "model/token_format.h"

#include "model/llama_config.h"

namespace gaggle::model {

std::vector<std::int64_t> TokenFormat::prompt(std::vector<std::int64_t> text_ids) const {
  if (bos_id >= 0) text_ids.insert(text_ids.begin(), bos_id);
  if (prompt_eos) text_ids.push_back(eos_id);
  return text_ids;
}

std::vector<std::int64_t> TokenFormat::target(std::vector<std::int64_t> text_ids) const {
  text_ids.push_back(eos_id);
  return text_ids;
}

std::vector<std::int64_t> TokenFormat::truncate_prompt(std::vector<std::int64_t> prompt, std::int64_t max_tokens) const {
  if (max_tokens < 2 || static_cast<std::int64_t>(prompt.size()) <= max_tokens) return prompt;
  prompt.resize(static_cast<std::size_t>(max_tokens));
  if (prompt_eos) prompt.back() = eos_id;
  return prompt;
}

TokenFormat t5_token_format(std::int64_t tokenizer_eos_id) {
  TokenFormat f;
  f.eos_id = tokenizer_eos_id;
  return f;
}

TokenFormat llama_token_format(const LlamaConfig& c) {
  TokenFormat f;
  f.architecture = Architecture::llama;
  f.bos_id = c.bos_token_id;
  f.eos_id = c.eos_token_id;
  f.prompt_eos = false;
  return f;
}

TokenFormat read_token_format(const std::filesystem::path& base_dir, std::int64_t tokenizer_eos_id) {
  // Without config.json: T5's, so that data is checked before the base is (the model's
  // load names the missing file next).
  std::error_code ec;
  if (!std::filesystem::exists(base_dir / "config.json", ec)) return t5_token_format(tokenizer_eos_id);
  switch (read_architecture(base_dir)) {
    case Architecture::t5: return t5_token_format(tokenizer_eos_id);
    case Architecture::llama: return llama_token_format(read_llama_config(base_dir));
  }
  return t5_token_format(tokenizer_eos_id);
}

}  // namespace gaggle::model
