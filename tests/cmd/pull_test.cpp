#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

// Commits `bundle` as experts/<name>/<version>/ with plain git, bypassing every check
// (the hub's hook is removed first): what a compromised or careless hub could serve.
void sneak_into_hub(const fs::path& hub, const fs::path& work, const fs::path& bundle, const std::string& nv) {
  fs::remove(hub / "hooks" / "pre-receive");
  auto ok = [](const CommandResult& r) {
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  };
  if (!fs::exists(work)) ok(run_command({"git", "clone", "-q", hub.string(), work.string()}));
  ok(run_command({"git", "-C", work.string(), "pull", "-q", "origin", "main"}));
  fs::create_directories(work / "experts" / nv);
  fs::copy(bundle, work / "experts" / nv, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  ok(run_command({"git", "-C", work.string(), "add", "-A"}));
  ok(run_command({"git", "-C", work.string(), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "sneak"}));
  ok(run_command({"git", "-C", work.string(), "push", "-q", "origin", "HEAD:main"}));
}

}  // namespace

TEST_CASE("pull verifies and installs a pool, and a second pull transfers nothing", "[cmd][pull]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  for (auto [name, seed] : {std::pair{"sst2", 1}, std::pair{"agnews", 2}, std::pair{"trec", 3}}) {
    fs::path b = make_signed_bundle(dir / name, name, "1.0.0", alice, seed);
    REQUIRE(run_gaggle({"publish", b.string(), "--hub", hub.string(), "--trust", trust.string()}).exit_code == 0);
  }
  fs::path pool = dir / "pool";
  auto first = run_gaggle({"pull", "--hub", "file://" + hub.string(), "--pool", pool.string(), "--trust", trust.string(),
                           "--only", "sst2", "--only", "trec@1.0.0", "--json"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  auto j = nlohmann::json::parse(first.out);
  CHECK(j["installed"] == 2);
  CHECK(j["rejected"] == 0);
  CHECK(j["git_bytes"].get<std::uint64_t>() > 0);
  CHECK(fs::exists(pool / "bundles" / "sst2" / "1.0.0" / "adapter.safetensors"));
  CHECK(!fs::exists(pool / "bundles" / "agnews"));
  auto verify = run_gaggle({"verify", (pool / "bundles" / "trec" / "1.0.0").string(), "--trust", trust.string()});
  CHECK(verify.exit_code == 0);

  auto second = run_gaggle({"pull", "--hub", "file://" + hub.string(), "--pool", pool.string(), "--trust", trust.string(), "--json"});
  REQUIRE(second.exit_code == 0);
  auto k = nlohmann::json::parse(second.out);
  CHECK(k["installed"] == 1);
  CHECK(k["unchanged"] == 2);

  auto third = run_gaggle({"pull", "--hub", "file://" + hub.string(), "--pool", pool.string(), "--trust", trust.string(), "--json"});
  REQUIRE(third.exit_code == 0);
  auto l = nlohmann::json::parse(third.out);
  CHECK(l["installed"] == 0);
  CHECK(l["unchanged"] == 3);
  CHECK(l["git_bytes"] == 0);
  CHECK(l["git_objects"] == 0);
  CHECK(l["http_bytes"] == 0);
  auto text = run_gaggle({"pull", "--hub", hub.string(), "--pool", pool.string(), "--trust", trust.string()});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("0 installed, 3 unchanged, 0 rejected"));
}

TEST_CASE("pull reports and skips bundles that fail verification", "[cmd][pull]") {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  Signer mallory = make_signer(dir.path(), "mallory");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  fs::path good = make_signed_bundle(dir / "good", "good", "1.0.0", alice, 1);
  REQUIRE(run_gaggle({"publish", good.string(), "--hub", hub.string(), "--trust", trust.string()}).exit_code == 0);

  fs::path unsigned_b = make_bundle(dir / "unsigned", "unsigned", "1.0.0", 2);
  fs::path untrusted = make_signed_bundle(dir / "untrusted", "untrusted", "1.0.0", mallory, 3);
  fs::path tampered = make_signed_bundle(dir / "tampered", "tampered", "1.0.0", alice, 4);
  {
    std::string bytes = read_text(tampered / "adapter.safetensors");
    bytes[bytes.size() - 1] ^= 0x01;
    write_text(tampered / "adapter.safetensors", bytes);
  }
  fs::path misplaced = make_signed_bundle(dir / "misplaced", "realname", "1.0.0", alice, 5);
  sneak_into_hub(hub, dir / "work", unsigned_b, "unsigned/1.0.0");
  sneak_into_hub(hub, dir / "work", untrusted, "untrusted/1.0.0");
  sneak_into_hub(hub, dir / "work", tampered, "tampered/1.0.0");
  sneak_into_hub(hub, dir / "work", misplaced, "othername/1.0.0");

  fs::path pool = dir / "pool";
  auto r = run_gaggle({"pull", "--hub", hub.string(), "--pool", pool.string(), "--trust", trust.string(), "--json"});
  CHECK(r.exit_code == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["installed"] == 1);
  CHECK(j["rejected"] == 4);
  for (const auto& b : j["bundles"]) {
    INFO(b.dump());
    if (b["name"] == "good") CHECK(b["status"] == "installed");
    else CHECK(b["status"] == "rejected");
  }
  CHECK_THAT(r.err, Catch::Contains("rejected tampered@1.0.0") && Catch::Contains("rejected untrusted@1.0.0") &&
                        Catch::Contains("rejected unsigned@1.0.0") && Catch::Contains("rejected othername@1.0.0"));
  // Nothing half-installed: only the good bundle is in the pool, on disk and in pool.json.
  CHECK(fs::exists(pool / "bundles" / "good" / "1.0.0" / "manifest.json"));
  for (const char* bad : {"unsigned", "untrusted", "tampered", "othername"}) {
    INFO(bad);
    CHECK((!fs::exists(pool / "bundles" / bad) || fs::is_empty(pool / "bundles" / bad)));
  }
  auto list = nlohmann::json::parse(run_gaggle({"pool", "list", "--pool", pool.string(), "--json"}).out);
  CHECK(list["bundles"].size() == 1);
}

TEST_CASE("pull needs a trust file and a pool", "[cmd][pull]") {
  TempDir dir;
  auto r = run_gaggle({"pull", "--hub", dir.path().string(), "--pool", (dir / "p").string(), "--trust", (dir / "nope").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("trust file"));
  CHECK(run_gaggle({"pull", "--hub", dir.path().string()}).exit_code == 2);
}
