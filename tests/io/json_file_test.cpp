// JSON from outside (io/json_file.h): nesting is bounded before anything recurses over it.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;

TEST_CASE("json_nesting_depth counts arrays and objects, not brackets in strings", "[io][json]") {
  CHECK(io::json_nesting_depth("1") == 0);
  CHECK(io::json_nesting_depth(R"({"a": [1, {"b": []}]})") == 4);
  CHECK(io::json_nesting_depth(R"({"a": "[[[[{{{{", "b": "\"[[["})") == 1);
  CHECK(io::json_nesting_depth(std::string(1000, '[') + std::string(1000, ']')) == io::kMaxJsonNesting + 1);
}

TEST_CASE("JSON nested past the limit is an error naming the source, not a stack overflow", "[io][json]") {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  CHECK(io::parse_json(nested(io::kMaxJsonNesting), "ok.json").is_array());
  // 200,000 levels in 400 KB: copying the parsed value recursed once per level and crashed.
  try {
    io::parse_json(R"({"extra": )" + nested(200000) + "}", "deep.json");
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid);
    CHECK_THAT(e.what(), Catch::Contains("deep.json") && Catch::Contains("nested deeper than 64 levels"));
  }
  // A safetensors header from a download, likewise.
  test::TempDir dir;
  const std::string header = R"({"__metadata__": {"x": )" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  test::write_text(dir / "deep.safetensors", file + header);
  CHECK_THROWS_WITH(io::SafetensorsFile::open(dir / "deep.safetensors"),
                    Catch::Contains("deep.safetensors") && Catch::Contains("deeper than 64 levels"));
}
