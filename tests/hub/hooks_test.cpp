// The hooks of hooks/, exercised with plain git: the hub's pre-receive hook (installed by
// 'gaggle hub init') and the contributor's pre-push hook.
#include <catch2/catch.hpp>

#include "hub/fixtures.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

struct Clone {
  fs::path dir;
  CommandResult git(std::vector<std::string> args) const {
    std::vector<std::string> argv{"env", "GAGGLE=" + gaggle_binary().string(), "git", "-C", dir.string(),
                                  "-c", "user.name=t", "-c", "user.email=t@example.org"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  void add_dir(const fs::path& bundle, const std::string& where) const {
    fs::create_directories(dir / where);
    fs::copy(bundle, dir / where, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  CommandResult commit_and_push(const std::string& message) const {
    REQUIRE(git({"add", "-A"}).exit_code == 0);
    auto c = git({"commit", "-q", "-m", message});
    INFO(c.err);
    REQUIRE(c.exit_code == 0);
    return git({"push", "origin", "HEAD:main"});
  }
  void reset() const {
    REQUIRE(git({"fetch", "-q", "origin"}).exit_code == 0);
    REQUIRE(git({"reset", "-q", "--hard", "origin/main"}).exit_code == 0);
    REQUIRE(git({"clean", "-qfdx"}).exit_code == 0);
  }
};

Clone clone_of(const fs::path& hub, const fs::path& dir) {
  auto r = run_command({"git", "clone", "-q", hub.string(), dir.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return Clone{dir};
}

}  // namespace

TEST_CASE("the pre-receive hook accepts trusted bundles and rejects everything else", "[hub][hooks]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  Signer mallory = make_signer_inproc(dir.path(), "mallory");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  Clone work = clone_of(hub, dir / "work");
  auto main_of = [&] { return run_command({"git", "--git-dir", hub.string(), "rev-parse", "main"}).out; };

  fs::path good = make_signed_bundle_inproc(dir / "good", "good", "1.0.0", alice, 1);
  work.add_dir(good, "experts/good/1.0.0");
  auto ok = work.commit_and_push("good");
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK_THAT(ok.err, Catch::Contains("accepted experts/good/1.0.0"));
  std::string tip = main_of();

  auto rejected = [&](const std::string& what, const std::string& expect) {
    auto r = work.commit_and_push(what);
    INFO(what << ": " << r.err);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains("push rejected") && Catch::Contains(expect));
    CHECK(main_of() == tip);
    work.reset();
  };

  SECTION("unsigned") {
    gaggle::bundle::DemoBundleOptions o;
    o.name = "plain";
    o.version = "1.0.0";
    gaggle::bundle::make_demo_bundle(dir / "plain", o);
    work.add_dir(dir / "plain", "experts/plain/1.0.0");
    rejected("unsigned", "does not verify");
  }
  SECTION("signed by a key the hub does not trust") {
    work.add_dir(make_signed_bundle_inproc(dir / "evil", "evil", "1.0.0", mallory, 2), "experts/evil/1.0.0");
    rejected("untrusted", "does not verify");
  }
  SECTION("malformed manifest") {
    fs::path b = make_signed_bundle_inproc(dir / "broken", "broken", "1.0.0", alice, 3);
    write_text(b / "manifest.json", "{\"format_version\": 1, \"name\": ");
    work.add_dir(b, "experts/broken/1.0.0");
    rejected("malformed", "does not verify");
  }
  SECTION("a tampered file") {
    fs::path b = make_signed_bundle_inproc(dir / "tampered", "tampered", "1.0.0", alice, 4);
    std::string bytes = read_text(b / "adapter.safetensors");
    bytes.back() ^= 1;
    write_text(b / "adapter.safetensors", bytes);
    work.add_dir(b, "experts/tampered/1.0.0");
    rejected("tampered", "does not verify");
  }
  SECTION("a manifest filed under another name") {
    work.add_dir(make_signed_bundle_inproc(dir / "real", "realname", "1.0.0", alice, 5), "experts/fake/1.0.0");
    rejected("misfiled", "another name or version");
  }
  SECTION("changing a published version") {
    std::string bytes = read_text(work.dir / "experts/good/1.0.0/adapter.safetensors");
    bytes.back() ^= 1;
    write_text(work.dir / "experts/good/1.0.0/adapter.safetensors", bytes);
    rejected("modify", "immutable");
  }
  SECTION("deleting a published version") {
    fs::remove_all(work.dir / "experts/good");
    rejected("delete", "immutable");
  }
  SECTION("adding a file to a published version") {
    write_text(work.dir / "experts/good/1.0.0/extra.txt", "x");
    rejected("extra", "already published");
  }
  SECTION("files outside the layout") {
    write_text(work.dir / "experts/loose.txt", "x");
    rejected("loose", "outside the layout");
  }
  SECTION("a hub without a trust file refuses bundles") {
    fs::remove(hub / "allowed_signers");
    work.add_dir(make_signed_bundle_inproc(dir / "later", "later", "1.0.0", alice, 6), "experts/later/1.0.0");
    rejected("no trust", "no trust file");
  }
}

TEST_CASE("the pre-push hook stops a bad bundle before it leaves", "[hub][hooks]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  fs::remove(hub / "hooks" / "pre-receive");  // only the client-side hook stands guard here
  Clone work = clone_of(hub, dir / "work");
  fs::copy_file(source_dir() / "hooks" / "pre-push", work.dir / ".git" / "hooks" / "pre-push");
  REQUIRE(work.git({"config", "gaggle.trust", trust.string()}).exit_code == 0);

  gaggle::bundle::DemoBundleOptions o;
  o.name = "plain";
  gaggle::bundle::make_demo_bundle(dir / "plain", o);
  work.add_dir(dir / "plain", "experts/plain/0.1.0");
  auto r = work.commit_and_push("unsigned");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("gaggle pre-push") && Catch::Contains("experts/plain/0.1.0"));
  CHECK_THAT(run_command({"git", "--git-dir", hub.string(), "ls-tree", "-r", "--name-only", "main"}).out,
             !Catch::Contains("plain"));
  work.reset();

  work.add_dir(make_signed_bundle_inproc(dir / "good", "good", "1.0.0", alice, 1), "experts/good/1.0.0");
  auto ok = work.commit_and_push("good");
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
}
