#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

TEST_CASE("pool list shows a pulled pool, as a table or JSON", "[cmd][pool]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  for (auto [name, seed] : {std::pair{"sst2", 1}, std::pair{"agnews", 2}}) {
    fs::path b = make_signed_bundle(dir / name, name, "1.0.0", alice, seed);
    REQUIRE(run_gaggle({"publish", b.string(), "--hub", hub.string(), "--trust", trust.string()}).exit_code == 0);
  }
  REQUIRE(run_gaggle({"pull", "--hub", hub.string(), "--pool", (dir / "pool").string(), "--trust", trust.string()}).exit_code == 0);

  auto table = run_gaggle({"pool", "list", "--pool", (dir / "pool").string()});
  REQUIRE(table.exit_code == 0);
  CHECK_THAT(table.out, Catch::Contains("agnews@1.0.0") && Catch::Contains("sst2@1.0.0") && Catch::Contains("alice") &&
                            Catch::Contains("2 bundles"));
  auto json = run_gaggle({"pool", "list", "--pool", (dir / "pool").string(), "--json"});
  REQUIRE(json.exit_code == 0);
  auto j = nlohmann::json::parse(json.out);
  REQUIRE(j["bundles"].size() == 2);
  CHECK(j["bundles"][0]["name"] == "agnews");
  CHECK(j["bundles"][1]["path"] == "bundles/sst2/1.0.0");

  auto none = run_gaggle({"pool", "list", "--pool", dir.path().string()});
  CHECK(none.exit_code == 1);
  CHECK_THAT(none.err, Catch::Contains("not a pool") && Catch::Contains("hint: "));
  CHECK(run_gaggle({"pool"}).exit_code == 2);
}
