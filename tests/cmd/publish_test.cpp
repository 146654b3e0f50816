#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

CommandResult gaggle_with_home(const fs::path& home, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "HOME=" + home.string(), "XDG_CACHE_HOME=" + (home / "cache").string(),
                                gaggle_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

std::string git_files(const fs::path& hub) {
  return run_command({"git", "--git-dir", hub.string(), "ls-tree", "-r", "--name-only", "main"}).out;
}

}  // namespace

TEST_CASE("publish signs a copy, verifies it and commits experts/<name>/<version>", "[cmd][publish]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  fs::path b = make_bundle(dir / "sst2", "sst2", "1.0.0");

  auto r = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", "file://" + hub.string(), "--key",
                                         alice.key.string(), "--trust", trust.string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["name"] == "sst2");
  CHECK(j["version"] == "1.0.0");
  CHECK(j["principal"] == "alice");
  CHECK(j["signed_now"] == true);
  CHECK(j["attempts"] == 1);
  CHECK(j["commit"].get<std::string>().size() == 40);
  CHECK(!fs::exists(b / "manifest.json.sig"));  // the user's bundle is untouched
  CHECK_THAT(git_files(hub), Catch::Contains("experts/sst2/1.0.0/manifest.json\n") &&
                                 Catch::Contains("experts/sst2/1.0.0/manifest.json.sig\n") &&
                                 // the adapter travels as its tensors (bundle/tensor_index.h)
                                 Catch::Contains("experts/sst2/1.0.0/adapter.safetensors.parts/header\n"));
  auto main = run_command({"git", "--git-dir", hub.string(), "rev-parse", "main"});
  CHECK(main.out == j["commit"].get<std::string>() + "\n");

  SECTION("republishing a version is refused, by path or URL") {
    auto again = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", hub.string(), "--key", alice.key.string()});
    CHECK(again.exit_code == 1);
    CHECK_THAT(again.err, Catch::Contains("already published"));
    CHECK_THAT(again.err, Catch::Contains("hint: "));
    CHECK(run_command({"git", "--git-dir", hub.string(), "rev-parse", "main"}).out == main.out);
  }
  SECTION("a signed bundle is published as it is; a new version lands beside the old") {
    fs::path b2 = make_signed_bundle(dir / "sst2-b", "sst2", "1.1.0", alice, 2);
    std::string sig = read_text(b2 / "manifest.json.sig");
    auto r2 = gaggle_with_home(dir.path(), {"publish", b2.string(), "--hub", hub.string(), "--trust", trust.string()});
    INFO(r2.err);
    REQUIRE(r2.exit_code == 0);
    CHECK_THAT(r2.out, Catch::StartsWith("published sst2@1.1.0"));
    auto in_hub = run_command({"git", "--git-dir", hub.string(), "show", "main:experts/sst2/1.1.0/manifest.json.sig"});
    CHECK(in_hub.out == sig);
    CHECK_THAT(git_files(hub), Catch::Contains("experts/sst2/1.0.0/manifest.json\n"));
  }
}

TEST_CASE("publish refuses what it cannot sign or verify", "[cmd][publish]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  Signer mallory = make_signer(dir.path(), "mallory");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  fs::path b = make_bundle(dir / "b", "sst2", "1.0.0");

  auto no_key = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", hub.string()});
  CHECK(no_key.exit_code == 1);
  CHECK_THAT(no_key.err, Catch::Contains("not signed"));
  CHECK_THAT(no_key.err, Catch::Contains("--key"));

  auto untrusted = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", hub.string(), "--key",
                                                 mallory.key.string(), "--trust", trust.string()});
  CHECK(untrusted.exit_code == 1);
  CHECK_THAT(untrusted.err, Catch::StartsWith("gaggle: error: "));

  auto too_big = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", hub.string(), "--key", alice.key.string(),
                                               "--blob-threshold", "1KB"});
  CHECK(too_big.exit_code == 2);
  CHECK_THAT(too_big.err, Catch::Contains("--blob-store"));

  auto bad_unit = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", hub.string(), "--blob-threshold", "3 parsecs"});
  CHECK(bad_unit.exit_code == 2);

  auto no_hub = gaggle_with_home(dir.path(), {"publish", b.string(), "--hub", (dir / "nowhere.git").string(), "--key",
                                              alice.key.string()});
  CHECK(no_hub.exit_code == 1);
  CHECK_THAT(no_hub.err, Catch::Contains("nowhere.git"));
  // Nothing reached the hub.
  CHECK_THAT(git_files(hub), !Catch::Contains("experts/sst2"));
}

TEST_CASE("publish --help shows the worked example", "[cmd][publish]") {
  auto r = run_gaggle({"publish", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Example:") && Catch::Contains("--blob-store"));
}
