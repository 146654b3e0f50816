// `gaggle hub gc`: blob-store files no manifest on the hub lists are removed once older
// than the grace period; referenced blobs, young blobs and anything not named like a
// sha256 stay; publishes running at the same time as gc lose nothing.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "hub/fixtures.h"
#include "hub/gc.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

CommandResult publish_to(const fs::path& bundle, const fs::path& hub, const fs::path& trust, const fs::path& cache,
                         const Signer& signer, const std::string& store) {
  return run_gaggle({"publish", bundle.string(), "--hub", hub.string(), "--trust", trust.string(), "--cache",
                     cache.string(), "--key", signer.key.string(), "--blob-threshold", "1KB", "--blob-store", store,
                     "--json"});
}

CommandResult gc(const fs::path& hub, const fs::path& dav, const std::string& grace, bool dry_run = false) {
  std::vector<std::string> args{"hub", "gc", hub.string(), "--blob-dir", dav.string(), "--grace", grace, "--json"};
  if (dry_run) args.push_back("--dry-run");
  return run_gaggle(args);
}

nlohmann::json json_of_success(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

void make_old(const fs::path& p) { fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(3)); }

}  // namespace

TEST_CASE("hub gc removes old unreferenced blobs only, and --dry-run removes nothing", "[hub][gc]") {
  if (nginx_missing()) return;
  BlobStoreHub h;
  const TempDir& dir = h.dir;
  const Signer& alice = h.alice;
  const fs::path &trust = h.trust, &hub = h.hub;
  const std::string& store = h.store;
  int seed = 0;
  for (const char* name : {"one", "two"}) {
    auto p = publish_to(make_bundle(dir / name, name, "1.0.0", ++seed), hub, trust, dir / "cache", alice, store);
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
  }
  std::vector<std::string> referenced;
  for (const auto& e : fs::directory_iterator(dir / "dav")) referenced.push_back(e.path().filename().string());
  // Each bundle's adapter went as its parts: a header and one blob per tensor.
  REQUIRE(referenced.size() > 2);
  for (const auto& r : referenced) make_old(dir / "dav" / r);  // old, but listed by a manifest
  const std::string old_orphan(64, 'a'), young_orphan(64, 'b');
  write_text(dir / "dav" / old_orphan, "left by a killed publish");
  make_old(dir / "dav" / old_orphan);
  write_text(dir / "dav" / young_orphan, "a publish in flight");
  write_text(dir / "dav" / "README", "not a blob");
  make_old(dir / "dav" / "README");

  auto dry = json_of_success(gc(hub, dir / "dav", "1h", /*dry_run=*/true));
  CHECK(dry["manifests"] == 2);
  CHECK(dry["referenced"] == referenced.size());
  REQUIRE(dry["removed"].size() == 1);
  CHECK(dry["removed"][0]["sha256"] == old_orphan);
  CHECK(fs::exists(dir / "dav" / old_orphan));

  auto done = json_of_success(gc(hub, dir / "dav", "1h"));
  CHECK(done["removed"].size() == 1);
  CHECK(done["kept_referenced"] == referenced.size());
  CHECK(done["kept_young"] == 1);
  CHECK_FALSE(fs::exists(dir / "dav" / old_orphan));
  CHECK(fs::exists(dir / "dav" / young_orphan));
  CHECK(fs::exists(dir / "dav" / "README"));
  for (const auto& r : referenced) CHECK(fs::exists(dir / "dav" / r));
  auto pulled = run_gaggle({"pull", "--hub", hub.string(), "--pool", (dir / "pool").string(), "--trust", trust.string()});
  INFO(pulled.err);
  CHECK(pulled.exit_code == 0);

  // A blob a manifest lists but the store lost is reported.
  fs::remove(dir / "dav" / referenced[0]);
  auto lost = gc(hub, dir / "dav", "1h");
  CHECK(lost.exit_code == 0);
  CHECK_THAT(lost.out, Catch::Contains(referenced[0]));

  auto bad = run_gaggle({"hub", "gc", hub.string(), "--blob-dir", (dir / "dav").string(), "--grace", "soon"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("not a duration"));
  CHECK_THROWS_WITH(gaggle::hub::gc_blob_store({hub, dir / "nowhere"}), Catch::Contains("does not exist"));
}

TEST_CASE("hub gc running beside concurrent publishers never removes a blob they reference", "[hub][gc][concurrent]") {
  if (nginx_missing()) return;
  BlobStoreHub h;
  const TempDir& dir = h.dir;
  const Signer& alice = h.alice;
  const fs::path &trust = h.trust, &hub = h.hub;
  const std::string& store = h.store;
  constexpr int kPublishers = 3, kEach = 2;
  std::vector<fs::path> bundles;
  for (int p = 0; p < kPublishers; ++p)
    for (int i = 0; i < kEach; ++i) {
      const std::string name = "p" + std::to_string(p) + "-" + std::to_string(i);
      bundles.push_back(make_bundle(dir / name, name, "1.0.0", p * 10 + i + 1));
    }
  std::atomic<bool> publishing{true};
  std::atomic<int> gc_runs{0}, gc_removed{0};
  auto collector = std::async(std::launch::async, [&] {
    while (publishing) {
      auto r = gc(hub, dir / "dav", "10m");
      if (r.exit_code == 0) gc_removed += static_cast<int>(nlohmann::json::parse(r.out)["removed"].size());
      ++gc_runs;
    }
  });
  std::vector<std::future<std::vector<CommandResult>>> publishers;
  for (int p = 0; p < kPublishers; ++p)
    publishers.push_back(std::async(std::launch::async, [&, p] {
      std::vector<CommandResult> out;
      for (int i = 0; i < kEach; ++i)
        out.push_back(publish_to(bundles[static_cast<std::size_t>(p * kEach + i)], hub, trust,
                                 dir / ("cache" + std::to_string(p)), alice, store));
      return out;
    }));
  for (auto& f : publishers)
    for (const auto& r : f.get()) {
      INFO(r.err);
      CHECK(r.exit_code == 0);
    }
  publishing = false;
  collector.get();
  CHECK(gc_runs > 0);
  CHECK(gc_removed == 0);
  // Every published bundle pulls and verifies from the store as gc left it.
  auto pulled = run_gaggle({"pull", "--hub", hub.string(), "--pool", (dir / "pool").string(), "--trust",
                            trust.string(), "--json"});
  INFO(pulled.err);
  REQUIRE(pulled.exit_code == 0);
  CHECK(nlohmann::json::parse(pulled.out)["installed"] == kPublishers * kEach);
}
