// examples/ci/publish-expert.sh publishes without a terminal, with the key from a secret.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

TEST_CASE("the CI example publishes non-interactively with a key from the environment", "[hub][ci]") {
  TempDir dir;
  Signer ci = make_signer_inproc(dir.path(), "ci");
  fs::path trust = write_trust(dir / "trust", {ci});
  fs::path hub = make_hub(dir / "hub.git", trust);
  make_bundle(dir / "out" / "sst2", "sst2", "1.2.0");
  std::string script = (source_dir() / "examples" / "ci" / "publish-expert.sh").string();
  std::vector<std::string> env{"env",
                               "HOME=" + dir.path().string(),
                               "GAGGLE=" + gaggle_binary().string(),
                               "GAGGLE_SIGNING_KEY=" + read_text(ci.key),
                               "GAGGLE_HUB=" + hub.string(),
                               "GAGGLE_TRUST=" + trust.string(),
                               "EXPERT_NAME=sst2",
                               "EXPERT_VERSION=1.2.0",
                               "EXPERT_DIR=" + (dir / "out" / "sst2").string(),
                               "SKIP_TRAINING=1",
                               script};
  auto r = run_command(env, "y\ny\ny\n");  // whatever is on stdin is never read
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["name"] == "sst2");
  CHECK(j["principal"] == "ci");
  CHECK(r.err.find("BEGIN OPENSSH PRIVATE KEY") == std::string::npos);  // the secret is never printed
  auto files = run_command({"git", "--git-dir", hub.string(), "ls-tree", "-r", "--name-only", "main"});
  CHECK_THAT(files.out, Catch::Contains("experts/sst2/1.2.0/manifest.json.sig"));

  // The same tag again: refused, not overwritten.
  auto again = run_command(env);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("already published"));

  auto misconfigured = run_command({"env", "-u", "GAGGLE_HUB", "GAGGLE=" + gaggle_binary().string(), script});
  CHECK(misconfigured.exit_code == 2);
  CHECK_THAT(misconfigured.err, Catch::Contains("GAGGLE_HUB"));
}
