// One rule for trust (hub/pool_trust.h): a pool remembers the trust file it was pulled
// with; verifying it again is cached by file identity; a tampered tensor, a foreign
// trust file or a pool without a trust file is refused.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "bundle/manifest.h"
#include "hub/fixtures.h"
#include "hub/pool_trust.h"
#include "hub/pull.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
using namespace gaggle::test::hub;

TEST_CASE("a pulled pool verifies against its own trust file, cached by file identity", "[hub][trust]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  Signer mallory = make_signer_inproc(dir.path(), "mallory");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub_path = make_hub(dir / "hub.git", trust);
  publish_many(dir / "work", hub_path.string(), alice, trust, 2);
  gaggle::hub::PullOptions o;
  o.hub = hub_path.string();
  o.pool_dir = dir / "pool";
  o.trust_file = trust;
  REQUIRE(gaggle::hub::pull_pool(o).installed == 2);
  CHECK(read_text(dir / "pool" / gaggle::hub::kPoolTrustFile) == read_text(trust));

  auto first = gaggle::hub::verify_pool(dir / "pool", {});
  REQUIRE(first.size() == 2);
  CHECK_FALSE(first[0].from_cache);
  CHECK(first[0].principal == "alice");
  auto second = gaggle::hub::verify_pool(dir / "pool", {});
  CHECK(second[0].from_cache);
  CHECK(second[1].from_cache);

  // Another trust file: verified anew, and refused when it does not trust the signer.
  fs::path other = write_trust(dir / "other", {mallory});
  CHECK_THROWS_WITH(gaggle::hub::verify_pool(dir / "pool", other), Catch::Contains("b000@1.0.0"));

  // A tensor changed in place (same size): the identity changes, the hash check refuses it.
  const fs::path adapter = dir / "pool" / "bundles" / "b001" / "1.0.0" / "adapter.safetensors";
  std::string bytes = read_text(adapter);
  bytes[bytes.size() - 1] = static_cast<char>(bytes[bytes.size() - 1] ^ 0x01);
  fs::remove(adapter);  // the pool hard-links files to its blob store: replace, do not edit the blob
  write_text(adapter, bytes);
  try {
    gaggle::hub::verify_pool(dir / "pool", {});
    FAIL("a tampered bundle verified");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::mismatch);
    CHECK_THAT(e.what(), Catch::Contains("bundle b001@1.0.0") && Catch::Contains("adapter.safetensors"));
  }
  // Only the bundles asked for are checked.
  CHECK(gaggle::hub::verify_pool(dir / "pool", {}, {dir / "pool" / "bundles" / "b000" / "1.0.0"}).size() == 1);

  // A pool that recorded no trust file needs one.
  fs::remove(dir / "pool" / gaggle::hub::kPoolTrustFile);
  CHECK_THROWS_WITH(gaggle::hub::verify_pool(dir / "pool", {}), Catch::Contains("records no trust file"));
}

TEST_CASE("gaggle pool verify checks a pool against the trust file it was pulled with", "[hub][trust]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub_path = make_hub(dir / "hub.git", trust);
  publish_many(dir / "work", hub_path.string(), alice, trust, 1);
  auto r = run_gaggle({"pull", "--hub", hub_path.string(), "--pool", (dir / "pool").string(), "--trust", trust.string()});
  REQUIRE(r.exit_code == 0);
  r = run_gaggle({"pool", "verify", "--pool", (dir / "pool").string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("1 bundles verified"));
  {
    gaggle::hub::PublishOptions po;  // b001 joins
    po.hub = hub_path.string();
    po.trust_file = trust;
    po.cache_dir = dir / "cache";
    gaggle::hub::publish_bundle(make_signed_bundle_inproc(dir / "b001", "b001", "1.0.0", alice, 2), po);
  }
  REQUIRE(run_gaggle({"pull", "--hub", hub_path.string(), "--pool", (dir / "pool").string(), "--trust", trust.string()})
              .exit_code == 0);
  // Every verb that loads a pool verifies it: diff --pool too.
  r = run_gaggle({"diff", "b000@1.0.0", "b001@1.0.0", "--pool", (dir / "pool").string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  // Demo bundles have gates but no average activations: pool gates says what is missing.
  r = run_gaggle({"pool", "gates", "--pool", (dir / "pool").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("gate and an average activation"));
  write_text(dir / "pool" / "bundles" / "b000" / "1.0.0" / "extra.txt", "x");
  r = run_gaggle({"diff", "b000@1.0.0", "b001@1.0.0", "--pool", (dir / "pool").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("extra.txt"));
  r = run_gaggle({"pool", "verify", "--pool", (dir / "pool").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("extra.txt") && Catch::Contains("b000@1.0.0"));
  r = run_gaggle({"pool", "gates", "--pool", (dir / "pool").string()});  // verified first
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("extra.txt"));
}

TEST_CASE("gaggle pool gates measures bundle directories before they are published", "[hub][gates]") {
  TempDir dir;
  // Two experts, two modules each: a's gate points along its own average activation,
  // b's is orthogonal to its own (b's inputs look like a's).
  const std::vector<float> e1{1, -1, 0, 0}, e2{0, 0, 1, -1};
  auto expert = [&](const std::string& name, const std::vector<float>& gate, const std::vector<float>& avg) {
    const fs::path b = dir / name;
    fs::create_directories(b);
    io::SafetensorsWriter w;
    for (const char* m : {"encoder.block.0.layer.0.SelfAttention.q", "decoder.block.0.layer.0.SelfAttention.q"}) {
      w.add_f32(std::string(m) + ".gate", {4}, gate);
      w.add_f32(std::string(m) + ".avg_act", {4}, avg);
    }
    w.write(b / "adapter.safetensors");
    bundle::Manifest m;
    m.name = name;
    m.version = "1.0.0";
    m.base_fingerprint = "sha256:" + std::string(64, '0');
    bundle::write_manifest(b, m);
    return b.string();
  };
  auto r = run_gaggle({"pool", "gates", expert("a", e1, e1), expert("b", e2, e1), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["experts"] == nlohmann::json::array({"a@1.0.0", "b@1.0.0"}));
  CHECK(j["chance_top1"] == Approx(0.5));
  CHECK(j["overall"]["modules"] == 2);
  CHECK(j["overall"]["gate_cosine"].get<double>() == Approx(0.0).margin(1e-9));
  CHECK(j["overall"]["own_alignment"].get<double>() == Approx(0.5));
  CHECK(j["expert_self_top1"]["a@1.0.0"].get<double>() == Approx(1.0));
  CHECK(j["expert_self_top1"]["b@1.0.0"].get<double>() == Approx(0.0));
  REQUIRE(j["layers"].size() == 2);
  r = run_gaggle({"pool", "gates", (dir / "a").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("at least two experts"));
  r = run_gaggle({"pool", "gates"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--pool POOL or bundle directories"));
}
