#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

TEST_CASE("hub init and hub trust", "[cmd][hub]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  auto r = run_gaggle({"hub", "init", (dir / "hub.git").string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["branch"] == "main");
  CHECK(j["trust"] == false);
  CHECK(!fs::exists(dir / "hub.git" / "allowed_signers"));

  fs::path trust = write_trust(dir / "trust", {alice});
  auto t = run_gaggle({"hub", "trust", (dir / "hub.git").string(), trust.string()});
  CHECK(t.exit_code == 0);
  CHECK(read_text(dir / "hub.git" / "allowed_signers") == alice.trust_line);

  auto again = run_gaggle({"hub", "init", (dir / "hub.git").string()});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("already exists"));

  auto not_hub = run_gaggle({"hub", "trust", dir.path().string(), trust.string()});
  CHECK(not_hub.exit_code == 1);

  auto missing_trust = run_gaggle({"hub", "init", (dir / "h2.git").string(), "--trust", (dir / "nope").string()});
  CHECK(missing_trust.exit_code == 1);
  CHECK(!fs::exists(dir / "h2.git"));

  auto bare = run_gaggle({"hub"});
  CHECK(bare.exit_code == 2);
}
