#pragma once
// Which architecture a Hugging Face checkpoint directory holds, from its config.json
// alone (issue #14). Torch-free: inspect and the conformance runner dispatch on it.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace gaggle::model {

enum class Architecture {
  t5,     // T5ForConditionalGeneration (model_type "t5")
  llama,  // LlamaForCausalLM (model_type "llama")
};

// "t5" / "llama": the model_type spelling.
const char* architecture_name(Architecture architecture);

// From "model_type", else the first of "architectures". A config with neither is T5 (the
// checkpoints gaggle has always read, some written before model_type existed).
// Throws Error{unsupported} naming `source` and the model_type for anything else.
Architecture detect_architecture(const nlohmann::json& config, const std::string& source);

// Reads <base_dir>/config.json. Throws Error{not_found} when absent.
Architecture read_architecture(const std::filesystem::path& base_dir);

}  // namespace gaggle::model
