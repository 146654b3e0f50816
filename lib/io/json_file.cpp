#include "io/json_file.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"

namespace gaggle::io {

int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;  // deep enough to refuse: no need to read on
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string json_nesting_problem(std::string_view text) {
  if (json_nesting_depth(text) <= kMaxJsonNesting) return "";
  return "JSON nested deeper than " + std::to_string(kMaxJsonNesting) + " levels";
}

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  if (std::string why = json_nesting_problem(text); !why.empty())
    throw_error(ErrorCode::invalid, "io", source + ": " + why);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    // nlohmann's text is "[json.exception.parse_error.101] parse error at ...": keep the part after the tag.
    if (auto pos = why.find("] "); pos != std::string::npos) why = why.substr(pos + 2);
    throw_error(ErrorCode::invalid, "io", source + ": invalid JSON (byte " + std::to_string(e.byte) + "): " + why);
  } catch (const nlohmann::json::exception& e) {
    // out_of_range: a number too large for a double, e.g. 1e999
    throw_error(ErrorCode::invalid, "io", source + ": invalid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  return parse_json(read_file(path), path.string());
}

void write_json_file_atomic(const std::filesystem::path& path, const nlohmann::json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

}  // namespace gaggle::io
