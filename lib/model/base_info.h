#pragma once
// What `gaggle inspect BASE_DIR` shows (issue #3, item 8; issue #14), computed without
// LibTorch: architecture from config.json (T5 or Llama), parameter count and dtypes from
// the weight headers, the fingerprint (cached) and the linear modules with their shapes.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/architecture.h"
#include "model/llama_config.h"
#include "model/t5_config.h"

namespace gaggle::model {

// True if `dir` looks like a base model directory (has config.json).
bool is_base_dir(const std::filesystem::path& dir);

struct BaseInfo {
  std::filesystem::path dir;
  Architecture kind = Architecture::t5;  // which of the configs below is filled
  T5Config config;                       // kind t5
  LlamaConfig llama;                     // kind llama
  std::string architecture;              // "T5 encoder-decoder: 2+3 layers, ..." style summary
  std::int64_t num_parameters = 0;       // distinct model parameters (aliases not counted)
  std::string dtype;                     // stored dtype(s): "F32", or "F16+F32" when mixed
  std::vector<std::filesystem::path> weight_files;
  std::string tokenizer;                 // "spiece.model", "tokenizer.model", "tokenizer.json" or "" (none)
  std::string fingerprint;               // "sha256:..."
  struct Linear {
    std::string name;
    std::int64_t d_out = 0, d_in = 0;
  };
  std::vector<Linear> linears;

  nlohmann::ordered_json to_json() const;
};

// Throws Error{not_found|invalid|unsupported} like load_t5 / load_llama would (strict
// tensor check included), without building the model.
BaseInfo describe_base(const std::filesystem::path& dir);

}  // namespace gaggle::model
