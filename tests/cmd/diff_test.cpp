// gaggle diff from the command line: two bundle directories, text and --json.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

TEST_CASE("gaggle diff compares two versions tensor by tensor", "[cmd][diff]") {
  TempDir dir;
  for (const auto& [out, seed] : {std::pair{"v1", "1"}, std::pair{"v2", "2"}})
    REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / out).string(), "--name", "demo", "--seed", seed}).exit_code == 0);
  auto r = run_gaggle({"diff", (dir / "v1").string(), (dir / "v2").string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["summary"]["changed"].get<int>() > 0);
  CHECK(j["summary"]["unchanged"] == 0);
  r = run_gaggle({"diff", (dir / "v1").string(), (dir / "v1").string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("0 changed, 0 added, 0 removed"));
  r = run_gaggle({"diff", "demo@1", "demo@2", "--pool", (dir / "nopool").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("pool.json"));
}
