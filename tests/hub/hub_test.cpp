#include "hub/hub.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "hub/pool.h"
#include "io/error.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

TEST_CASE("hub URLs are classified by transport", "[hub][hub]") {
  CHECK(gaggle::hub::parse_hub_location("/srv/hub.git").transport == gaggle::hub::HubTransport::local);
  auto f = gaggle::hub::parse_hub_location("file:///srv/hub.git");
  CHECK(f.transport == gaggle::hub::HubTransport::local);
  CHECK(f.path == fs::path("/srv/hub.git"));
  CHECK(gaggle::hub::parse_hub_location("relative/hub").path.is_absolute());
  CHECK(gaggle::hub::parse_hub_location("git://127.0.0.1:9418/hub.git").transport == gaggle::hub::HubTransport::git);
  CHECK(gaggle::hub::parse_hub_location("http://h/git/hub.git").transport == gaggle::hub::HubTransport::http);
  CHECK(gaggle::hub::parse_hub_location("https://h/git/hub.git").transport == gaggle::hub::HubTransport::http);
  CHECK(gaggle::hub::parse_hub_location("https://h/pool/pool.json").transport ==
        gaggle::hub::HubTransport::static_index);
  CHECK(gaggle::hub::parse_hub_location("ssh://git@h/hub.git").transport == gaggle::hub::HubTransport::ssh);
  CHECK(gaggle::hub::parse_hub_location("git@host:hub.git").transport == gaggle::hub::HubTransport::ssh);
  CHECK_THROWS_AS(gaggle::hub::parse_hub_location("ftp://h/x"), Error);
  CHECK_THROWS_AS(gaggle::hub::parse_hub_location(""), Error);
}

TEST_CASE("hub init makes a bare repository on main with the hook and server config", "[hub][hub]") {
  TempDir dir;
  write_text(dir / "trust", "alice namespaces=\"gaggle-bundle\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOARx/WZ3D8LI6YyB6ayJW8DrpgxnaWpRCn4UtWDHuCc\n");
  gaggle::hub::HubInitOptions o;
  o.trust_file = dir / "trust";
  o.gaggle_binary = gaggle_binary();
  gaggle::hub::init_hub(dir / "hub.git", o);
  fs::path h = dir / "hub.git";
  CHECK(read_text(h / "HEAD") == "ref: refs/heads/main\n");
  auto head = run_command({"git", "--git-dir", h.string(), "rev-parse", "--verify", "main"});
  CHECK(head.exit_code == 0);
  auto files = run_command({"git", "--git-dir", h.string(), "ls-tree", "-r", "--name-only", "main"});
  CHECK(files.out == "README.md\nexperts/README.md\nhub.json\n");
  CHECK(read_text(h / "hooks" / "pre-receive") == read_text(source_dir() / "hooks" / "pre-receive"));
  struct stat st {};
  REQUIRE(::stat((h / "hooks" / "pre-receive").c_str(), &st) == 0);
  CHECK((st.st_mode & 0111) != 0);
  CHECK(read_text(h / "allowed_signers") == read_text(dir / "trust"));
  CHECK(fs::exists(h / "git-daemon-export-ok"));
  auto cfg = run_command({"git", "--git-dir", h.string(), "config", "--get", "receive.denyNonFastForwards"});
  CHECK(cfg.out == "true\n");
  auto bin = run_command({"git", "--git-dir", h.string(), "config", "--get", "gaggle.binary"});
  CHECK(bin.out == gaggle_binary().string() + "\n");
  // Never over an existing hub.
  try {
    gaggle::hub::init_hub(h, o);
    FAIL("init over an existing hub succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::exists);
  }
  // An empty directory is fine.
  fs::create_directories(dir / "empty");
  gaggle::hub::init_hub(dir / "empty", gaggle::hub::HubInitOptions{});
  CHECK(fs::exists(dir / "empty" / "HEAD"));
}

TEST_CASE("the embedded hook scripts are the ones in hooks/", "[hub][hub]") {
  CHECK(gaggle::hub::pre_receive_hook_script() == read_text(source_dir() / "hooks" / "pre-receive"));
  CHECK(gaggle::hub::pre_push_hook_script() == read_text(source_dir() / "hooks" / "pre-push"));
}

TEST_CASE("pool.json round-trips and rejects what it cannot trust", "[hub][pool]") {
  gaggle::hub::Pool p;
  p.hub = "git://h/hub.git";
  p.commit = std::string(40, 'a');
  p.updated = "2026-01-01T00:00:00Z";
  p.bundles.push_back({"sst2", "1.0.0", "bundles/sst2/1.0.0", "alice", "SHA256:x", std::string(64, 'b'), 123});
  p.bundles.push_back({"agnews", "0.1.0", "bundles/agnews/0.1.0", "bob", "SHA256:y", std::string(64, 'c'), 7});
  std::string text = gaggle::hub::serialize_pool(p);
  gaggle::hub::Pool q = gaggle::hub::parse_pool(text, "pool.json");
  REQUIRE(q.bundles.size() == 2);
  CHECK(q.bundles[0].name == "agnews");  // sorted
  CHECK(q.find("sst2", "1.0.0")->bytes == 123);
  CHECK(q.hub == p.hub);

  auto code_of = [](const std::string& t) {
    try {
      gaggle::hub::parse_pool(t, "pool.json");
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::usage;  // "did not throw"
  };
  std::string sha(64, 'a');
  auto bundle = [&](const std::string& path) {
    return "{\"format_version\":1,\"bundles\":[{\"name\":\"a\",\"version\":\"1.0.0\",\"path\":\"" + path +
           "\",\"manifest_sha256\":\"" + sha + "\"}]}";
  };
  CHECK(code_of(bundle("bundles/a/1.0.0")) == ErrorCode::usage);
  CHECK(code_of(bundle("../etc")) == ErrorCode::invalid);
  CHECK(code_of(bundle("/etc")) == ErrorCode::invalid);
  CHECK(code_of(bundle("a/./b")) == ErrorCode::invalid);
  CHECK(code_of("{\"format_version\":2,\"bundles\":[]}") == ErrorCode::unsupported);
  CHECK(code_of("{\"bundles\":[]}") == ErrorCode::invalid);
  CHECK(code_of("[1]") == ErrorCode::invalid);
  CHECK(code_of("{\"format_version\":1,\"bundles\":[{\"name\":\"A B\",\"version\":\"1.0.0\",\"path\":\"x\",\"manifest_sha256\":\"" +
                sha + "\"}]}") == ErrorCode::invalid);
  CHECK(code_of("{\"format_version\":1,\"bundles\":[{\"name\":\"a\",\"version\":\"1.0\",\"path\":\"x\",\"manifest_"
                "sha256\":\"" +
                sha + "\"}]}") == ErrorCode::invalid);
  CHECK(code_of("{\"format_version\":1,\"bundles\":[{\"name\":\"a\",\"version\":\"1.0.0\",\"path\":\"x\",\"manifest_"
                "sha256\":\"" +
                sha.substr(1) + "\"}]}") == ErrorCode::invalid);
  TempDir dir;
  try {
    gaggle::hub::read_pool(dir.path());
    FAIL("read_pool of an empty directory succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
  }
}
