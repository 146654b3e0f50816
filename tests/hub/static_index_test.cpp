// Static pool indexes fetched conditionally, against a real nginx: a pull that finds
// nothing new sends If-None-Match / If-Modified-Since and transfers nothing (304); a
// changed index is fetched again; a server that ignores the conditions still works
// (the whole index, compared); a damaged cache just means a full download.
#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "hub/fixtures.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

nlohmann::json pull_json(const std::string& hub, const fs::path& pool, const fs::path& trust,
                         std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"pull", "--hub", hub, "--pool", pool.string(), "--trust", trust.string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_gaggle(args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

// A hub holding `bundles` bundles signed by alice, pulled into www/pool, which nginx
// serves as a static index at `index`.
struct ServedIndex {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  fs::path served = dir / "www" / "pool";
  std::unique_ptr<Nginx> nginx;
  std::string index;

  explicit ServedIndex(int bundles, bool ignore_conditionals = false) {
    publish_many(dir / "work", hub.string(), alice, trust, bundles);
    pull_json(hub.string(), served, trust);
    NginxOptions o;
    o.static_root = dir / "www";
    o.ignore_conditionals = ignore_conditionals;
    nginx = std::make_unique<Nginx>(dir / "nginx", o);
    index = nginx->base() + "/static/pool/pool.json";
  }
};

}  // namespace

TEST_CASE("a static index that has not changed is not downloaded again", "[hub][static_index]") {
  if (nginx_missing()) return;
  ServedIndex s(3);
  const auto& dir = s.dir;
  const auto& alice = s.alice;
  const auto &trust = s.trust, &hub = s.hub, &served = s.served;
  const std::string& index = s.index;
  auto index_size = [&] { return static_cast<std::uint64_t>(fs::file_size(served / "pool.json")); };

  auto first = pull_json(index, dir / "mine", trust);
  CHECK(first["installed"] == 3);
  CHECK(first["index_not_modified"] == false);
  CHECK(first["index_bytes"] == index_size());

  auto second = pull_json(index, dir / "mine", trust);
  CHECK(second["unchanged"] == 3);
  CHECK(second["index_not_modified"] == true);
  CHECK(second["index_bytes"] == 0);
  CHECK(second["http_bytes"] == 0);
  CHECK(second["commit"] == first["commit"]);  // the same index, read from the pool's copy

  // The index changes (one more bundle): fetched again, the new bundle installed.
  gaggle::hub::PublishOptions po;
  po.hub = hub.string();
  po.trust_file = trust;
  gaggle::hub::publish_bundle(make_signed_bundle_inproc(dir / "extra", "extra", "1.0.0", alice, 99), po);
  pull_json(hub.string(), served, trust);
  auto third = pull_json(index, dir / "mine", trust);
  CHECK(third["index_not_modified"] == false);
  CHECK(third["index_bytes"] == index_size());
  CHECK(third["installed"] == 1);
  CHECK(third["unchanged"] == 3);
  CHECK(third["commit"] != first["commit"]);
  CHECK(pull_json(index, dir / "mine", trust)["index_not_modified"] == true);

  // A 304 is "the index is the same", not "the pool is complete": bundles left out before
  // (--only) are installed from the kept copy of the index.
  auto some = pull_json(index, dir / "partial", trust, {"--only", "b000"});
  CHECK(some["installed"] == 1);
  auto rest = pull_json(index, dir / "partial", trust);
  CHECK(rest["index_not_modified"] == true);
  CHECK(rest["installed"] == 3);
  CHECK(rest["unchanged"] == 1);

  // A damaged kept copy is ignored: the index is downloaded whole.
  write_text(dir / "mine" / ".gaggle" / "index" / "pool.json", "{ damaged");
  auto repaired = pull_json(index, dir / "mine", trust);
  CHECK(repaired["index_not_modified"] == false);
  CHECK(repaired["index_bytes"] == index_size());
  CHECK(repaired["unchanged"] == 4);
  CHECK(pull_json(index, dir / "mine", trust)["index_not_modified"] == true);
}

TEST_CASE("a server that ignores conditional requests still serves a static index", "[hub][static_index]") {
  if (nginx_missing()) return;
  ServedIndex s(2, /*ignore_conditionals=*/true);  // no ETag, If-Modified-Since ignored (Last-Modified still sent)
  const auto& dir = s.dir;
  const auto& trust = s.trust;
  const std::string& index = s.index;
  auto size = static_cast<std::uint64_t>(fs::file_size(dir / "www" / "pool" / "pool.json"));

  auto first = pull_json(index, dir / "mine", trust);
  CHECK(first["installed"] == 2);
  auto second = pull_json(index, dir / "mine", trust);
  CHECK(second["index_not_modified"] == false);  // a 200 with the whole index ...
  CHECK(second["index_bytes"] == size);
  CHECK(second["http_bytes"] == size);           // ... and nothing else
  CHECK(second["unchanged"] == 2);
  CHECK(second["installed"] == 0);
  CHECK(second["commit"] == first["commit"]);
}

TEST_CASE("a server that sends more than a document can hold is refused, not buffered", "[hub][static_index]") {
  if (nginx_missing()) return;
  ServedIndex s(2);
  const auto& dir = s.dir;
  const auto &trust = s.trust, &served = s.served;

  // One bundle's signature is 2 MiB (an SSHSIG is a few hundred bytes): that bundle is
  // rejected with the limit named, the other one installed.
  write_text(served / "bundles" / "b000" / "1.0.0" / "manifest.json.sig", std::string(2 << 20, 'x'));
  auto r = run_gaggle({"pull", "--hub", s.index, "--pool", (dir / "mine").string(), "--trust", trust.string()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("rejected b000@1.0.0") && Catch::Contains("manifest.json.sig") &&
                        Catch::Contains("more than 1048576 bytes"));
  CHECK_THAT(r.out, Catch::Contains("1 installed"));

  // An index past 64 MiB: the pull stops with the limit named, and the pool is as it was.
  const std::string pool_before = read_text(dir / "mine" / "pool.json");
  fs::create_directories(dir / "www" / "huge");
  write_text(dir / "www" / "huge" / "pool.json", std::string((64 << 20) + 1, ' '));
  auto huge = run_gaggle({"pull", "--hub", s.nginx->base() + "/static/huge/pool.json", "--pool",
                          (dir / "mine").string(), "--trust", trust.string()});
  CHECK(huge.exit_code == 1);
  CHECK_THAT(huge.err, Catch::Contains("huge/pool.json") && Catch::Contains("more than 67108864 bytes"));
  CHECK(read_text(dir / "mine" / "pool.json") == pool_before);
}
