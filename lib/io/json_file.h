#pragma once
// Reading JSON with errors that name the file and the byte offset.
#include <filesystem>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gaggle::io {

// Parses `text`; `source` names it in errors ("manifest.json: invalid JSON at byte 17: ...").
nlohmann::json parse_json(std::string_view text, const std::string& source);
nlohmann::json read_json_file(const std::filesystem::path& path);
// Pretty-printed (2 spaces) with a trailing newline, written atomically.
void write_json_file_atomic(const std::filesystem::path& path, const nlohmann::json& value);

}  // namespace gaggle::io
