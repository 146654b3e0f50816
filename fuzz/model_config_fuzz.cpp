// libFuzzer target: what a base model directory says about itself comes from wherever
// the model was downloaded. Its config.json (T5 or Llama, and the architecture detection
// that picks between them) and a llama2.c checkpoint's header must be rejected with an
// Error when malformed, never crash, hang, read out of bounds or let another exception
// out. The first byte picks the reader. Run with fuzz/run.sh model_config.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/llama2c_checkpoint.h"
#include "model/architecture.h"
#include "model/llama_config.h"
#include "model/t5_config.h"
#include "model/token_format.h"

namespace {

// One scratch directory per process, removed at exit.
const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("gaggle-fuzz-model-config-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  static const struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup;
  return dir;
}

void read_config(std::string_view text) {
  // As the readers get it: io::read_json_file has parsed the file (a parse error is its
  // Error); what the fuzzer explores is the object's fields.
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return;
  switch (gaggle::model::detect_architecture(json, "fuzz")) {
    case gaggle::model::Architecture::t5: {
      auto config = gaggle::model::parse_t5_config(json, "fuzz");
      gaggle::model::t5_expected_tensors(config);
      break;
    }
    case gaggle::model::Architecture::llama: {
      auto config = gaggle::model::parse_llama_config(json, "fuzz");
      gaggle::model::llama_expected_tensors(config);
      gaggle::model::llama_token_format(config);
      break;
    }
  }
}

void convert_llama2c(std::string_view bytes) {
  const auto bin = scratch() / "model.bin";
  {
    std::ofstream out(bin, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  gaggle::io::convert_llama2c_to_hf(bin, scratch() / "hf");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (data[0] % 2 == 0)
      read_config(rest);
    else
      convert_llama2c(rest);
  } catch (const gaggle::Error&) {
  }
  return 0;
}
