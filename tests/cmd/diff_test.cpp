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

TEST_CASE("gaggle log lists an expert's versions with signer and changes, and diff --hub compares them", "[cmd][diff]") {
  TempDir dir;
  REQUIRE(run_gaggle({"keygen", "-f", (dir / "k").string(), "-C", "alice"}).exit_code == 0);
  std::string pub = read_text(dir / "k.pub");
  write_text(dir / "trust", "alice namespaces=\"gaggle-bundle\" " + pub.substr(0, pub.find(' ', pub.find(' ') + 1)) + "\n");
  REQUIRE(run_gaggle({"hub", "init", (dir / "hub.git").string(), "--trust", (dir / "trust").string()}).exit_code == 0);
  for (const auto& [version, seed] : {std::pair{"1.0.0", "1"}, std::pair{"1.1.0", "2"}}) {
    const auto b = dir / version;
    REQUIRE(run_gaggle({"debug", "make-bundle", "--out", b.string(), "--name", "demo", "--version", version, "--seed", seed})
                .exit_code == 0);
    auto p = run_gaggle({"publish", b.string(), "--hub", (dir / "hub.git").string(), "--key", (dir / "k").string()});
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
  }
  auto r = run_gaggle({"log", "demo", "--hub", (dir / "hub.git").string(), "--trust", (dir / "trust").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("demo@1.0.0") && Catch::Contains("(first version)"));
  CHECK_THAT(r.out, Catch::Contains("demo@1.1.0") && Catch::Contains("alice") && Catch::Contains("changed"));
  r = run_gaggle({"diff", "demo@1.0.0", "demo@1.1.0", "--hub", (dir / "hub.git").string(), "--trust",
                  (dir / "trust").string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["to"] == "demo@1.1.0");
  r = run_gaggle({"log", "nobody", "--hub", (dir / "hub.git").string(), "--trust", (dir / "trust").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("no version of 'nobody'"));
}
