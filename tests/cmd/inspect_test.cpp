#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;

TEST_CASE("inspect prints a table of a golden checkpoint", "[cmd][inspect]") {
  auto r = run_gaggle({"inspect", (data_dir() / "golden/t5-v1_1-tiny/model.safetensors").string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("decoder.block.0.layer.2.DenseReluDense.wi_0.weight"));
  CHECK_THAT(r.out, Catch::Contains("F32"));
  CHECK_THAT(r.out, Catch::Contains("tensors,"));
  CHECK(r.err.empty());
}

TEST_CASE("inspect --json lists every tensor", "[cmd][inspect]") {
  auto r = run_gaggle({"inspect", "--json", (data_dir() / "golden/t5-v1_0-tiny/model.safetensors").string()});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["tensors"].is_array());
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "shared.weight") {
      found = true;
      CHECK(t["dtype"] == "F32");
      CHECK(t["shape"] == nlohmann::json::array({96, 32}));
      CHECK(t["bytes"] == 96 * 32 * 4);
    }
  }
  CHECK(found);
}

TEST_CASE("inspect exits 1 with a clear message on a malformed file", "[cmd][inspect]") {
  TempDir dir;
  write_text(dir / "bad.safetensors", std::string("\x08\0\0\0\0\0\0\0{\"a\":1}", 15));
  auto r = run_gaggle({"inspect", (dir / "bad.safetensors").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(r.err, Catch::Contains("bad.safetensors"));
  auto missing = run_gaggle({"inspect", (dir / "missing.safetensors").string()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("missing.safetensors"));
}

