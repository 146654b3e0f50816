#pragma once
// Shared by the train tests: a tiny T5 base with the real T5 vocabulary, saved as a
// Hugging Face checkpoint directory, and a learnable toy task.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "model/t5.h"
#include "support/test_support.h"
#include "tasks/task_data.h"

namespace gaggle::test {

inline void use_built_spm_shim() { ::setenv("GAGGLE_SPM_SHIM", GAGGLE_BUILD_DIR "/libgaggle_spm.so", 0); }

inline model::T5Config tiny_t5_config() {
  model::T5Config c;
  c.vocab_size = 32128;
  c.d_model = 32;
  c.d_kv = 8;
  c.d_ff = 64;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.num_heads = 4;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.gated = true;
  c.tie_word_embeddings = false;
  return c;
}

// <dir>: config.json, model.safetensors, spiece.model (the real T5 vocabulary).
inline void make_tiny_base(const std::filesystem::path& dir, uint64_t seed = 7) {
  use_built_spm_shim();
  torch::manual_seed(seed);
  auto t5 = model::make_t5(tiny_t5_config());
  model::save_t5(t5, dir);
  std::filesystem::copy_file(data_dir() / "t5-tokenizer/spiece.model", dir / "spiece.model",
                             std::filesystem::copy_options::overwrite_existing);
}

// A toy task the tiny model can learn: a word's answer is fixed by its group (4 answers).
inline std::vector<tasks::Example> toy_examples(bool with_choices = true) {
  const std::vector<std::string> words = {"apple",  "river", "stone", "cloud", "tiger", "piano", "lemon", "candle",
                                          "forest", "glass", "horse", "bread", "silver", "ocean", "paper", "rocket"};
  const std::vector<std::string> answers = {"red", "blue", "green", "yellow"};
  std::vector<tasks::Example> out;
  for (size_t i = 0; i < words.size(); ++i) {
    tasks::Example e;
    e.input = "which colour is " + words[i] + "?";
    e.target = answers[i % answers.size()];
    if (with_choices) {
      e.choices = answers;
      e.label = static_cast<int>(i % answers.size());
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace gaggle::test
