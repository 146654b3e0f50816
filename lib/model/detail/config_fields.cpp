#include "model/detail/config_fields.h"

#include <cmath>

#include "io/error.h"
#include "io/json_file.h"

namespace gaggle::model::detail {

ConfigFields::ConfigFields(const nlohmann::json& json, std::string source, std::string hint)
    : json_(json), source_(std::move(source)), hint_(std::move(hint)) {
  if (!json_.is_object()) fail("not a JSON object");
}

void ConfigFields::fail(const std::string& what) const {
  throw_error(ErrorCode::invalid, "model", source_ + ": " + what, hint_);
}

void ConfigFields::unsupported(const std::string& what, const std::string& hint) const {
  throw_error(ErrorCode::unsupported, "model", source_ + ": " + what, hint);
}

const nlohmann::json& ConfigFields::at(const char* key) const {
  static const nlohmann::json null;
  auto it = json_.find(key);
  return it == json_.end() ? null : *it;
}

std::int64_t ConfigFields::positive_int(const char* key, std::int64_t fallback, std::int64_t max) const {
  const nlohmann::json& v = at(key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) fail(std::string("field '") + key + "' must be an integer");
  // Compared as stored: an unsigned value past int64's range must not wrap to a small one.
  const bool too_large =
      v.is_number_unsigned() ? v.get<std::uint64_t>() > static_cast<std::uint64_t>(max) : v.get<std::int64_t>() > max;
  if (too_large) fail(std::string("field '") + key + "' must be at most " + std::to_string(max) + ", got " + v.dump());
  const auto n = v.get<std::int64_t>();
  if (n <= 0) fail(std::string("field '") + key + "' must be positive, got " + std::to_string(n));
  return n;
}

double ConfigFields::positive_number(const char* key, double fallback) const {
  const nlohmann::json& v = at(key);
  if (v.is_null()) return fallback;
  if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
    fail(std::string("field '") + key + "' must be a positive number");
  return v.get<double>();
}

bool ConfigFields::boolean(const char* key, bool fallback) const {
  const nlohmann::json& v = at(key);
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) fail(std::string("field '") + key + "' must be true or false");
  return v.get<bool>();
}

std::string ConfigFields::string(const char* key, const std::string& fallback) const {
  const nlohmann::json& v = at(key);
  if (v.is_null()) return fallback;
  if (!v.is_string()) fail(std::string("field '") + key + "' must be a string");
  return v.get<std::string>();
}

std::int64_t ConfigFields::token_id(const char* key, std::int64_t fallback) const {
  const nlohmann::json& field = at(key);
  if (field.is_null()) return fallback;
  const nlohmann::json& v = field.is_array() && !field.empty() ? field[0] : field;
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
    fail(std::string("field '") + key + "' must be a non-negative integer (or null)");
  return v.get<std::int64_t>();
}

void ConfigFields::require_in_vocabulary(std::initializer_list<std::pair<const char*, std::int64_t>> ids,
                                         std::int64_t vocab_size) const {
  for (const auto& [name, id] : ids)
    if (id >= vocab_size)
      fail(std::string("field '") + name + "' (" + std::to_string(id) + ") is outside the vocabulary (" +
           std::to_string(vocab_size) + ")");
}

nlohmann::json read_base_config(const std::filesystem::path& base_dir, std::filesystem::path* path) {
  *path = base_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(*path, ec))
    throw_error(ErrorCode::not_found, "model", "'" + base_dir.string() + "' has no config.json",
                "a base model is a Hugging Face checkpoint directory: config.json + model.safetensors");
  return io::read_json_file(*path);
}

}  // namespace gaggle::model::detail
