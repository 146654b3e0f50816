#pragma once
// A small JSON Schema validator for the subset gaggle's schemas use (manifests/):
// type, required, properties, additionalProperties, items, enum, const, pattern,
// minLength/maxLength, minimum/maximum, minItems/maxItems, plus the annotations
// $schema, $id, title, description, examples, default. Any other keyword is an
// Error{unsupported} (so a schema cannot silently check less than it says).
//
// The schemas of manifests/*.schema.json are compiled into the binary
// (cmake/EmbedSchemas.cmake): embedded_schema("bundle-manifest").
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gaggle::io {

struct SchemaViolation {
  std::string pointer;  // JSON pointer of the offending value ("" = the document)
  std::string message;  // "must be a string", "is missing required field 'name'", ...
};

// Up to `max_violations` problems, in document order; empty = valid.
std::vector<SchemaViolation> schema_violations(const nlohmann::json& value, const nlohmann::json& schema,
                                               std::size_t max_violations = 1);

// Throws Error{invalid}: "<source>: /files/0/sha256: does not match pattern '^[0-9a-f]{64}$'".
void validate_json(const nlohmann::json& value, const nlohmann::json& schema, const std::string& source);

// A schema compiled into the binary, by file name without ".schema.json". Parsed once.
// Throws Error{not_found} for an unknown name.
const nlohmann::json& embedded_schema(std::string_view name);
std::vector<std::string> embedded_schema_names();

}  // namespace gaggle::io
