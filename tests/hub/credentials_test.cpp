// Credentials for HTTP hubs and blob stores: GAGGLE_USER + GAGGLE_PASSWORD, GAGGLE_TOKEN,
// or a git credential helper (for the hub and, after a 401, the blob store); never
// prompted for, never printed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

// Runs gaggle with HOME=home, no GAGGLE_* credentials, plus `vars`.
CommandResult gaggle_env(const fs::path& home, const std::vector<std::string>& vars, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "-u", "GAGGLE_TOKEN", "-u", "GAGGLE_USER", "-u", "GAGGLE_PASSWORD",
                                "HOME=" + home.string(), "XDG_CONFIG_HOME=" + (home / ".config").string(),
                                "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"};
  argv.insert(argv.end(), vars.begin(), vars.end());
  argv.push_back(gaggle_binary().string());
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

}  // namespace

TEST_CASE("HTTP hubs and blob stores behind basic auth", "[hub][credentials]") {
  if (smart_http_missing()) return;
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::create_directories(dir / "srv");
  fs::path hub = make_hub(dir / "srv" / "hub.git", trust);
  const std::string password = "s3cret-pass-7f2a", token = "tok-91c4e0d2";
  write_text(dir / "htpasswd", htpasswd_line("ci", password) + htpasswd_line("gaggle", token));
  NginxOptions o;
  o.git_root = dir / "srv";
  o.dav_root = dir / "dav";
  o.htpasswd = dir / "htpasswd";
  Nginx nginx(dir / "nginx", o);
  std::string url = nginx.base() + "/git/hub.git";
  fs::path home = dir / "home";
  fs::create_directories(home);
  auto publish_args = [&](const fs::path& b) {
    return std::vector<std::string>{"publish", b.string(), "--hub", url, "--trust", trust.string(), "--cache",
                                    (dir / "cache").string(), "--json"};
  };
  auto no_secret = [&](const CommandResult& r) {
    CHECK(r.out.find(password) == std::string::npos);
    CHECK(r.err.find(password) == std::string::npos);
    CHECK(r.out.find(token) == std::string::npos);
    CHECK(r.err.find(token) == std::string::npos);
  };

  fs::path b1 = make_signed_bundle_inproc(dir / "b1", "b1", "1.0.0", alice, 1);
  auto anonymous = gaggle_env(home, {}, publish_args(b1));
  CHECK(anonymous.exit_code == 1);
  CHECK_THAT(anonymous.err, Catch::Contains("GAGGLE_TOKEN"));  // the hint says where credentials come from

  auto wrong = gaggle_env(home, {"GAGGLE_USER=ci", "GAGGLE_PASSWORD=nope"}, publish_args(b1));
  CHECK(wrong.exit_code == 1);

  auto user_pass = gaggle_env(home, {"GAGGLE_USER=ci", "GAGGLE_PASSWORD=" + password}, publish_args(b1));
  INFO(user_pass.err);
  CHECK(user_pass.exit_code == 0);
  no_secret(user_pass);

  // A token, for the hub and for the blob store.
  fs::path b2 = make_bundle(dir / "b2", "b2", "1.0.0", 2);
  auto args = publish_args(b2);
  for (std::string a : std::vector<std::string>{"--key", alice.key.string(), "--blob-threshold", "1KB", "--blob-store",
                                                nginx.base() + "/blobs"})
    args.push_back(a);
  auto with_token = gaggle_env(home, {"GAGGLE_TOKEN=" + token}, args);
  INFO(with_token.err);
  CHECK(with_token.exit_code == 0);
  no_secret(with_token);
  auto blob_without = gaggle_env(home, {}, {"pull", "--hub", url, "--pool", (dir / "p0").string(), "--trust", trust.string()});
  CHECK(blob_without.exit_code == 1);

  // git's own credential helper, configured in the user's ~/.gitconfig.
  write_text(home / ".gitconfig", "[credential]\n\thelper = store --file=" + (home / "creds").string() + "\n");
  write_text(home / "creds", "http://ci:" + password + "@127.0.0.1:" + url.substr(url.rfind(':') + 1, url.find('/', url.rfind(':')) - url.rfind(':') - 1) + "\n");
  fs::path b3 = make_signed_bundle_inproc(dir / "b3", "b3", "1.0.0", alice, 3);
  auto helper = gaggle_env(home, {}, publish_args(b3));
  INFO(helper.err);
  CHECK(helper.exit_code == 0);
  no_secret(helper);

  // Pull with credentials: git from the helper, the blob store from the environment.
  auto p = gaggle_env(home, {"GAGGLE_TOKEN=" + token},
                      {"pull", "--hub", url, "--pool", (dir / "pool").string(), "--trust", trust.string(), "--json"});
  INFO(p.err);
  REQUIRE(p.exit_code == 0);
  CHECK(nlohmann::json::parse(p.out)["installed"] == 3);
  no_secret(p);

  // The blob store from git's credential helper too (asked after the store's 401):
  // publish a large file and pull everything with no GAGGLE_* credentials at all.
  fs::path b4 = make_bundle(dir / "b4", "b4", "1.0.0", 4);
  auto args4 = publish_args(b4);
  for (std::string a : std::vector<std::string>{"--key", alice.key.string(), "--blob-threshold", "1KB", "--blob-store",
                                                nginx.base() + "/blobs"})
    args4.push_back(a);
  auto helper_blob = gaggle_env(home, {}, args4);
  INFO(helper_blob.err);
  REQUIRE(helper_blob.exit_code == 0);
  CHECK(nlohmann::json::parse(helper_blob.out)["blobs"].size() == 1);
  CHECK(nlohmann::json::parse(helper_blob.out)["bytes_uploaded"].get<std::uint64_t>() > 1000);
  no_secret(helper_blob);
  auto q = gaggle_env(home, {}, {"pull", "--hub", url, "--pool", (dir / "pool-helper").string(), "--trust", trust.string(), "--json"});
  INFO(q.err);
  REQUIRE(q.exit_code == 0);
  auto jq = nlohmann::json::parse(q.out);
  CHECK(jq["installed"] == 4);
  CHECK(jq["http_bytes"].get<std::uint64_t>() > 2000);  // the two blobs, through basic auth
  no_secret(q);
}
