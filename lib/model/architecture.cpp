#include "model/architecture.h"

#include "io/error.h"
#include "io/json_file.h"

namespace gaggle::model {

const char* architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::t5: return "t5";
    case Architecture::llama: return "llama";
  }
  return "?";
}

Architecture detect_architecture(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object())
    throw_error(ErrorCode::invalid, "model", source + ": not a JSON object", "config.json must be a Hugging Face model config");
  const std::string hint = "supported bases: T5ForConditionalGeneration (model_type \"t5\") and LlamaForCausalLM "
                           "(model_type \"llama\")";
  if (auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw_error(ErrorCode::invalid, "model", source + ": field 'model_type' must be a string", hint);
    const std::string type = it->get<std::string>();
    if (type == "t5") return Architecture::t5;
    if (type == "llama") return Architecture::llama;
    throw_error(ErrorCode::unsupported, "model", source + ": model_type '" + type + "' is not supported", hint);
  }
  if (auto it = j.find("architectures"); it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    const std::string arch = (*it)[0].get<std::string>();
    if (arch.rfind("T5", 0) == 0) return Architecture::t5;
    if (arch.rfind("Llama", 0) == 0) return Architecture::llama;
    throw_error(ErrorCode::unsupported, "model", source + ": architecture '" + arch + "' is not supported", hint);
  }
  return Architecture::t5;
}

Architecture read_architecture(const std::filesystem::path& base_dir) {
  auto path = base_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw_error(ErrorCode::not_found, "model", "'" + base_dir.string() + "' has no config.json",
                "a base model is a Hugging Face checkpoint directory: config.json + model.safetensors");
  return detect_architecture(io::read_json_file(path), path.string());
}

}  // namespace gaggle::model
