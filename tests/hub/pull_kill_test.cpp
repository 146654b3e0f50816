// kill -9 at any moment of a pull leaves the pool as it was, or complete.
#include <catch2/catch.hpp>
#include <signal.h>

#include <set>

#include "bundle/verify.h"
#include "hub/fixtures.h"
#include "hub/pool.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

std::set<std::string> listed(const fs::path& pool) {
  std::set<std::string> out;
  for (const auto& b : gaggle::hub::read_pool(pool).bundles) out.insert(b.name + "@" + b.version);
  return out;
}

void check_every_listed_bundle_verifies(const fs::path& pool, const fs::path& trust) {
  for (const auto& b : gaggle::hub::read_pool(pool).bundles) {
    INFO(b.name << "@" << b.version);
    CHECK_NOTHROW(gaggle::bundle::verify_bundle(pool / b.path, gaggle::bundle::VerifyOptions{trust, 0, false}));
  }
}

}  // namespace

TEST_CASE("kill -9 during a pull leaves the pool as it was or complete", "[hub][pull][kill]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  const int n = 40;
  publish_many(dir / "work", hub.string(), alice, trust, n);
  fs::path pool = dir / "pool";
  auto first = run_gaggle({"pull", "--hub", hub.string(), "--pool", pool.string(), "--trust", trust.string(), "--only",
                           "b000", "--only", "b001", "--only", "b002"});
  REQUIRE(first.exit_code == 0);
  const std::set<std::string> before = listed(pool);
  REQUIRE(before.size() == 3);

  int complete = 0, as_before = 0;
  for (int delay_ms : {200, 700, 1000, 1150, 1300, 1500, 1800, 2200}) {
    Process p({gaggle_binary().string(), "pull", "--hub", hub.string(), "--pool", pool.string(), "--trust",
               trust.string(), "-q"},
              dir / "pull.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(p.pid(), SIGKILL);
    p.stop();
    auto now = listed(pool);  // pool.json always parses: it is replaced atomically
    INFO("killed after " << delay_ms << " ms");
    CHECK((now == before || now.size() == static_cast<std::size_t>(n)));
    check_every_listed_bundle_verifies(pool, trust);
    if (now.size() == static_cast<std::size_t>(n)) ++complete;
    else ++as_before;
    if (now.size() == static_cast<std::size_t>(n)) break;
  }
  WARN("pulls killed before pool.json was replaced: " << as_before << ", after: " << complete);

  // The next pull finishes the job from whatever the killed ones left behind.
  auto last = run_gaggle({"pull", "--hub", hub.string(), "--pool", pool.string(), "--trust", trust.string()});
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  CHECK(listed(pool).size() == static_cast<std::size_t>(n));
  check_every_listed_bundle_verifies(pool, trust);
  // No temporaries are left in the pool after a pull that completed.
  for (const auto& e : fs::recursive_directory_iterator(pool / "bundles"))
    CHECK(e.path().filename().string().rfind(".gaggle-tmp-", 0) != 0);
}
