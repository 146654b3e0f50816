#pragma once
// Reading JSON with errors that name the file and the byte offset.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gaggle::io {

// JSON from outside is refused past this depth of nested arrays and objects: copying,
// dumping and schema-checking a parsed value recurse once per level, and a 400 KB manifest
// of 200,000 nested arrays overflowed the stack. Real files nest a handful of levels.
inline constexpr int kMaxJsonNesting = 64;

// The deepest nesting of arrays and objects in `text` (brackets inside strings skipped);
// counting stops at limit + 1. Cheap: one pass over the bytes, no parse.
int json_nesting_depth(std::string_view text, int limit = kMaxJsonNesting);

// "JSON nested deeper than 64 levels" when `text` nests past kMaxJsonNesting, else "": for
// readers that parse JSON themselves and report it in their own words (parse_json checks it).
std::string json_nesting_problem(std::string_view text);

// Parses `text`; `source` names it in errors ("manifest.json: invalid JSON at byte 17: ...").
// Nesting deeper than kMaxJsonNesting is an error too.
nlohmann::json parse_json(std::string_view text, const std::string& source);
nlohmann::json read_json_file(const std::filesystem::path& path);
// Pretty-printed (2 spaces) with a trailing newline, written atomically.
void write_json_file_atomic(const std::filesystem::path& path, const nlohmann::json& value);

}  // namespace gaggle::io
