#pragma once
// The fields of a Hugging Face config.json as the T5 and Llama readers take them: a field
// that is absent or null keeps the reader's default; anything else must have the type and
// range the reader asks for, or the error names the file, the field and what it must be.
// Torch-free (built into gaggle_model_format with the readers' other torch-free parts).
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace gaggle::model::detail {

class ConfigFields {
 public:
  // json: the parsed file (must outlive this); source: the file as errors name it; hint:
  // what a valid config is, given with every error.
  ConfigFields(const nlohmann::json& json, std::string source, std::string hint);

  // Throws Error{invalid} "SOURCE: WHAT" with the hint.
  [[noreturn]] void fail(const std::string& what) const;
  // Throws Error{unsupported} "SOURCE: WHAT" with this hint: a valid config of what gaggle
  // cannot compute.
  [[noreturn]] void unsupported(const std::string& what, const std::string& hint) const;

  // Sizes are bounded because the readers loop over layers and build per-layer lists before
  // any weight is read: a config.json claiming 10^12 layers must be an error, not a hang.
  // Every real checkpoint is far inside these bounds.
  static constexpr std::int64_t kMaxSize = std::int64_t{1} << 24;  // dimensions, heads, vocabulary, positions
  static constexpr std::int64_t kMaxLayers = 4096;

  // An integer in [1, max].
  std::int64_t positive_int(const char* key, std::int64_t fallback, std::int64_t max = kMaxSize) const;
  double positive_number(const char* key, double fallback) const;  // finite and > 0
  bool boolean(const char* key, bool fallback) const;
  std::string string(const char* key, const std::string& fallback) const;
  // A token id: an integer >= 0, or (eos_token_id in newer configs) a list whose first
  // element counts.
  std::int64_t token_id(const char* key, std::int64_t fallback) const;
  // Fails naming the first of the (field, token id) pairs that is not below vocab_size.
  void require_in_vocabulary(std::initializer_list<std::pair<const char*, std::int64_t>> ids,
                             std::int64_t vocab_size) const;

  // The field, or null where it is absent (for the readers' own checks).
  const nlohmann::json& at(const char* key) const;

 private:
  const nlohmann::json& json_;
  std::string source_, hint_;
};

// base_dir/config.json parsed, into *path its path; Error{not_found} saying what a base
// model directory holds where there is none.
nlohmann::json read_base_config(const std::filesystem::path& base_dir, std::filesystem::path* path);

}  // namespace gaggle::model::detail
