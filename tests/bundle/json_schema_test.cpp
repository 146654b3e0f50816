#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_schema.h"

using namespace gaggle;
using json = nlohmann::json;

namespace {

std::string first(const json& value, const json& schema) {
  auto v = io::schema_violations(value, schema);
  return v.empty() ? std::string("ok") : v[0].pointer + ": " + v[0].message;
}

}  // namespace

TEST_CASE("each supported keyword is checked", "[io][json_schema]") {
  json s = json::parse(R"({
    "type": "object", "required": ["a"], "additionalProperties": false,
    "properties": {
      "a": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^x"},
      "n": {"type": "integer", "minimum": 1, "maximum": 3},
      "f": {"type": ["number", "null"]},
      "e": {"enum": ["red", "green"]},
      "c": {"const": 7},
      "l": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "boolean"}},
      "o": {"type": "object", "additionalProperties": {"type": "integer"}}
    }})");
  CHECK(first(json::parse(R"({"a": "xy", "n": 2, "f": null, "e": "red", "c": 7, "l": [true], "o": {"k": 1}})"), s) == "ok");
  CHECK(first(json::parse(R"({})"), s) == "/a: is required but missing");
  CHECK(first(json::parse(R"({"a": 5})"), s) == "/a: must be a string, not an integer");
  CHECK(first(json::parse(R"({"a": "x"})"), s) == "/a: is too short (1 characters, at least 2)");
  CHECK(first(json::parse(R"({"a": "xyzzy"})"), s) == "/a: is too long (5 characters, at most 4)");
  CHECK(first(json::parse(R"({"a": "yy"})"), s) == "/a: \"yy\" does not match pattern '^x'");
  CHECK(first(json::parse(R"({"a": "xy", "n": 0})"), s) == "/n: must be at least 1, not 0");
  CHECK(first(json::parse(R"({"a": "xy", "n": 4})"), s) == "/n: must be at most 3, not 4");
  CHECK(first(json::parse(R"({"a": "xy", "n": 1.5})"), s) == "/n: must be an integer, not a number");
  CHECK(first(json::parse(R"({"a": "xy", "n": 2.0})"), s) == "ok");
  // A whole number too large for a 64-bit integer is a number, not an integer (found by
  // fuzz/run.sh bundle_text: converting it to test it was undefined behaviour).
  CHECK(first(json::parse(R"({"a": "xy", "n": 1.11e81})"), s) == "/n: must be an integer, not a number");
  CHECK(first(json::parse(R"({"a": "xy", "o": {"k": -9.3e18}})"), s) == "/o/k: must be an integer, not a number");
  CHECK(first(json::parse(R"({"a": "xy", "f": "1"})"), s) == "/f: must be a number or null, not a string");
  CHECK(first(json::parse(R"({"a": "xy", "e": "blue"})"), s) == "/e: must be one of [\"red\",\"green\"], not \"blue\"");
  CHECK(first(json::parse(R"({"a": "xy", "c": 8})"), s) == "/c: must be 7, not 8");
  CHECK(first(json::parse(R"({"a": "xy", "l": []})"), s) == "/l: has 0 items, at least 1 needed");
  CHECK(first(json::parse(R"({"a": "xy", "l": [true, true, true]})"), s) == "/l: has 3 items, at most 2 allowed");
  CHECK(first(json::parse(R"({"a": "xy", "l": [true, 1]})"), s) == "/l/1: must be a boolean, not an integer");
  CHECK(first(json::parse(R"({"a": "xy", "o": {"a/b": "x"}})"), s) == "/o/a~1b: must be an integer, not a string");
  CHECK(first(json::parse(R"({"a": "xy", "zz": 1})"), s) == "/zz: is not an allowed field");
  CHECK(io::schema_violations(json::parse(R"({"a": 1, "n": 9})"), s, 10).size() == 2);
}

TEST_CASE("validate_json names the source and pointer, and refuses unknown keywords", "[io][json_schema]") {
  json s = {{"type", "object"}, {"properties", {{"k", {{"type", "string"}}}}}};
  CHECK_NOTHROW(io::validate_json(json{{"k", "v"}}, s, "f.json"));
  CHECK_THROWS_WITH(io::validate_json(json{{"k", 1}}, s, "f.json"), "f.json: /k: must be a string, not an integer");
  json unsupported = {{"oneOf", json::array()}};
  CHECK_THROWS_MATCHES(io::validate_json(json::object(), unsupported, "f.json"), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::unsupported; }));
}

TEST_CASE("the bundle manifest schema is compiled in", "[io][json_schema]") {
  auto names = io::embedded_schema_names();
  CHECK(std::find(names.begin(), names.end(), "bundle-manifest") != names.end());
  const json& s = io::embedded_schema("bundle-manifest");
  CHECK(s["title"].get<std::string>().find("manifest") != std::string::npos);
  CHECK(&s == &io::embedded_schema("bundle-manifest"));  // parsed once
  CHECK_THROWS_AS(io::embedded_schema("no-such-schema"), Error);
}
