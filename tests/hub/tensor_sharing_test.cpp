// Per-tensor content addressing on a real hub (issue #16; bundle/tensor_index.h): a new
// version that changes only the gates sends, stores and pulls only the gates (plus the
// manifest, signature and header), against git daemon on 127.0.0.1 with the hub's own
// pre-receive hook; every part is checked against its signed hash, and a part whose bytes
// do not match is refused and never installed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>

#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "hub/fixtures.h"
#include "hub/log.h"
#include "hub/publish.h"
#include "hub/pull.h"
#include "hub/servers.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
using namespace gaggle::test::hub;

namespace {

constexpr int kModules = 8;
constexpr std::int64_t kDim = 512, kRank = 16;

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// An expert bundle shaped like train-gate's output: LoRA A and B per module, a gate and an
// average activation per module; `gate_seed` changes only the gates.
// `edits` elements of every lora_A (spread over the tensor) get new values.
fs::path make_expert(const fs::path& dir, const std::string& version, std::uint32_t gate_seed, const Signer& signer,
                     int edits = 0) {
  fs::create_directories(dir);
  io::SafetensorsWriter w;
  for (int m = 0; m < kModules; ++m) {
    const std::string name = "encoder.block." + std::to_string(m) + ".layer.0.SelfAttention.q";
    auto a = random_floats(kRank * kDim, 100 + m);
    for (int e = 0; e < edits; ++e) a[static_cast<std::size_t>(e) * 97 % a.size()] += 0.25f;
    w.add_f32(name + ".lora_A", {kRank, kDim}, a);
    w.add_f32(name + ".lora_B", {kDim, kRank}, random_floats(kRank * kDim, 200 + m));
    w.add_f32(name + ".avg_act", {kDim}, random_floats(kDim, 300 + m));
    w.add_f32(name + ".gate", {kDim}, random_floats(kDim, gate_seed * 1000 + m));
  }
  w.write(dir / "adapter.safetensors");
  bundle::Manifest m;
  m.name = "sharing";
  m.version = version;
  m.base_fingerprint = "sha256:" + std::string(64, '0');
  m.body = {{"method", "phatgoose"}};
  bundle::write_manifest(dir, m);
  bundle::sign_bundle(dir, bundle::SignOptions{signer.key});
  return dir;
}

// Publishing to / pulling from `hub` with the test's trust file; callers set the rest.
gaggle::hub::PublishOptions publish_options(const std::string& hub, const fs::path& trust, const fs::path& cache) {
  gaggle::hub::PublishOptions o;
  o.hub = hub;
  o.trust_file = trust;
  o.cache_dir = cache;
  return o;
}

gaggle::hub::PullResult pull_into(const std::string& hub, const fs::path& pool, const fs::path& trust,
                                  std::vector<std::string> only = {}) {
  gaggle::hub::PullOptions o;
  o.hub = hub;
  o.pool_dir = pool;
  o.trust_file = trust;
  o.only = std::move(only);
  return gaggle::hub::pull_pool(o);
}

// Changes one file on the hub's main branch behind its hook's back, as someone with write
// access to its storage could (no hook runs for a fetch into the bare repository).
void tamper_on_hub(const fs::path& hub_path, const fs::path& work, const std::string& file,
                   const std::function<void(std::string&)>& edit) {
  REQUIRE(run_command({"git", "clone", "-q", hub_path.string(), work.string()}).exit_code == 0);
  REQUIRE(fs::exists(work / file));
  std::string bytes = read_text(work / file);
  edit(bytes);
  write_text(work / file, bytes);
  REQUIRE(run_command({"git", "-C", work.string(), "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "tamper"})
              .exit_code == 0);
  REQUIRE(run_command({"git", "--git-dir", hub_path.string(), "fetch", "-q", work.string(), "+main:main"}).exit_code == 0);
}

// Publishes 1.0.0 then a gates-only 1.1.0 to `url`, pulling after each into dir/pool;
// checks that the second publish and pull move at most 5 % of the first's bytes.
void check_gates_only_sharing(const std::string& url, const TempDir& dir, const fs::path& trust,
                              const fs::path& v1, const fs::path& v2, const std::string& transport) {
  auto publish = [&](const fs::path& bundle) {
    return gaggle::hub::publish_bundle(bundle, publish_options(url, trust, dir / "cache"));
  };
  auto pull = [&] { return pull_into(url, dir / "pool", trust); };
  auto full_push = publish(v1);
  auto full_pull = pull();
  REQUIRE(full_pull.installed == 1);
  auto gates_push = publish(v2);
  auto gates_pull = pull();
  REQUIRE(gates_pull.installed == 1);
  CHECK(gates_pull.unchanged == 1);
  const double push_share = double(gates_push.bytes_pushed) / double(full_push.bytes_pushed);
  const double pull_share = double(gates_pull.git_bytes) / double(full_pull.git_bytes);
  WARN("tensor sharing over " << transport << ": publish " << gates_push.bytes_pushed << " of " << full_push.bytes_pushed
                              << " B (" << 100 * push_share << " %), pull " << gates_pull.git_bytes << " of "
                              << full_pull.git_bytes << " B (" << 100 * pull_share << " %); objects "
                              << full_pull.git_objects << " then " << gates_pull.git_objects);
  CHECK(push_share <= 0.05);
  CHECK(pull_share <= 0.05);
}

}  // namespace

TEST_CASE("over smart HTTP too, a gates-only version sends and pulls only the gates", "[hub][tensors][http]") {
  if (smart_http_missing()) return;
  SmartHttpHub h;
  const TempDir& dir = h.dir;
  auto v1 = make_expert(dir / "v1", "1.0.0", 1, h.alice);
  auto v2 = make_expert(dir / "v2", "1.1.0", 2, h.alice);
  check_gates_only_sharing(h.url(), dir, h.trust, v1, v2, "smart HTTP");
  CHECK(read_text(dir / "pool" / "bundles" / "sharing" / "1.1.0" / "adapter.safetensors") ==
        read_text(v2 / "adapter.safetensors"));
}

TEST_CASE("a version that changes only the gates sends and pulls only the gates", "[hub][tensors]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::create_directories(dir / "srv");
  fs::path hub_path = make_hub(dir / "srv" / "hub.git", trust);
  GitDaemon daemon(dir / "srv");
  const std::string url = daemon.url("hub.git");

  auto v1 = make_expert(dir / "v1", "1.0.0", 1, alice);
  auto v2 = make_expert(dir / "v2", "1.1.0", 2, alice);
  const auto m1 = bundle::read_manifest(v1), m2 = bundle::read_manifest(v2);
  REQUIRE(m1.files.size() == 1);
  REQUIRE(m1.files[0].tensors);
  REQUIRE(m1.files[0].sha256 != m2.files[0].sha256);  // the file changed as a whole
  check_gates_only_sharing(url, dir, trust, v1, v2, "git://");

  // The pool holds the exact files the publisher signed, and they verify.
  for (const auto& [version, src] : {std::pair{"1.0.0", v1}, std::pair{"1.1.0", v2}}) {
    const fs::path installed = dir / "pool" / "bundles" / "sharing" / version;
    CHECK(read_text(installed / "adapter.safetensors") == read_text(src / "adapter.safetensors"));
    CHECK_FALSE(fs::exists(installed / "adapter.safetensors.parts"));
  }
  // gaggle log: both versions, verified, the second one's change being the gates.
  gaggle::hub::LogOptions lo;
  lo.hub = url;
  lo.name = "sharing";
  lo.trust_file = trust;
  auto history = gaggle::hub::expert_log(lo);
  REQUIRE(history.size() == 2);
  CHECK(history[0].version == "1.0.0");
  CHECK(history[0].first);
  CHECK(history[1].version == "1.1.0");
  CHECK(history[1].principal == "alice");
  CHECK(history[1].time > 0);
  CHECK(history[1].changes.changed == kModules);
  CHECK(history[1].changes.unchanged == 3 * kModules);
  for (const auto& t : history[1].changes.files[0].tensors)
    if (t.change == bundle::Change::changed) CHECK_THAT(t.name, Catch::EndsWith(".gate"));

  // The hub keeps the file as parts: one header and one blob per distinct tensor.
  auto tree = run_command({"git", "--git-dir", hub_path.string(), "ls-tree", "-r", "--name-only", "main"}).out;
  CHECK_THAT(tree, Catch::Contains("experts/sharing/1.1.0/adapter.safetensors.parts/header"));
  CHECK_THAT(tree, Catch::Contains("experts/sharing/1.1.0/adapter.safetensors.parts/" + m2.files[0].tensors->tensors[0].sha256));
}

TEST_CASE("a tensor part whose bytes do not match its signed hash is refused", "[hub][tensors]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub_path = make_hub(dir / "hub.git", trust);
  auto v1 = make_expert(dir / "v1", "1.0.0", 1, alice);
  gaggle::hub::publish_bundle(v1, publish_options(hub_path.string(), trust, dir / "cache"));

  // Someone with write access to the hub's storage swaps one gate's bytes.
  const auto m = bundle::read_manifest(v1);
  const auto& gate = m.files[0].tensors->tensors.back();
  tamper_on_hub(hub_path, dir / "work", "experts/sharing/1.0.0/adapter.safetensors.parts/" + gate.sha256,
                [](std::string& bytes) { bytes[0] = static_cast<char>(bytes[0] ^ 0x55); });

  auto r = pull_into(hub_path.string(), dir / "pool", trust);
  CHECK(r.installed == 0);
  REQUIRE(r.rejected == 1);
  CHECK_THAT(r.bundles[0].reason, Catch::Contains(gate.sha256));
  CHECK_THAT(r.bundles[0].reason, Catch::Contains("does not match its size and sha256"));
  CHECK_FALSE(fs::exists(dir / "pool" / "bundles" / "sharing" / "1.0.0"));
}

TEST_CASE("over a blob store and a static index, a gates-only version moves only the gates", "[hub][tensors][blobs]") {
  if (nginx_missing()) return;
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  NginxOptions no;
  no.dav_root = dir / "dav";
  no.static_root = dir / "www";
  Nginx nginx(dir / "nginx", no);
  const std::string store = nginx.base() + "/blobs/";

  auto publish = [&](const fs::path& bundle) {
    auto o = publish_options(hub.string(), trust, dir / "cache");
    o.key = alice.key;
    o.blob_store = store;
    o.blob_threshold = 1000;
    return gaggle::hub::publish_bundle(bundle, o);
  };
  auto pull = [&](const std::string& from, const fs::path& pool, std::vector<std::string> only = {}) {
    return pull_into(from, pool, trust, std::move(only));
  };

  auto v1 = make_expert(dir / "v1", "1.0.0", 1, alice);
  auto v2 = make_expert(dir / "v2", "1.1.0", 2, alice);
  const auto full_push = publish(v1);
  const auto gates_push = publish(v2);
  CHECK(full_push.bytes_uploaded == fs::file_size(v1 / "adapter.safetensors"));

  // A pool pulled from the hub: the blob store's parts, the unchanged ones taken from 1.0.0.
  const auto full_pull = pull(hub.string(), dir / "pool", {"sharing@1.0.0"});
  REQUIRE(full_pull.installed == 1);
  const auto gates_pull = pull(hub.string(), dir / "pool");
  REQUIRE(gates_pull.installed == 1);
  CHECK(gates_pull.reused_bytes > 0);

  // A static index: a pool of the same versions published without a blob store (so its
  // manifests name no parts_url), served by nginx. The new version's missing tensors
  // come as byte ranges of the served file.
  fs::path plain_hub = make_hub(dir / "plain.git", trust);
  for (const fs::path& v : {v1, v2}) gaggle::hub::publish_bundle(v, publish_options(plain_hub.string(), trust, dir / "cache"));
  const fs::path served = dir / "www" / "pool";
  REQUIRE(pull(plain_hub.string(), served).installed == 2);
  const std::string index = nginx.base() + "/static/pool/pool.json";
  const auto index_full = pull(index, dir / "mine", {"sharing@1.0.0"});
  REQUIRE(index_full.installed == 1);
  const auto index_gates = pull(index, dir / "mine");
  REQUIRE(index_gates.installed == 1);
  CHECK(index_gates.reused_bytes == gates_pull.reused_bytes);

  auto share = [](std::uint64_t part, std::uint64_t whole) { return double(part) / double(whole); };
  WARN("blob store: publish " << gates_push.bytes_uploaded << " of " << full_push.bytes_uploaded << " B ("
                              << 100 * share(gates_push.bytes_uploaded, full_push.bytes_uploaded) << " %), pull "
                              << gates_pull.http_bytes << " of " << full_pull.http_bytes << " B ("
                              << 100 * share(gates_pull.http_bytes, full_pull.http_bytes) << " %); static index: pull "
                              << index_gates.http_bytes << " of " << index_full.http_bytes << " B ("
                              << 100 * share(index_gates.http_bytes, index_full.http_bytes) << " %)");
  CHECK(share(gates_push.bytes_uploaded, full_push.bytes_uploaded) <= 0.05);
  CHECK(share(gates_pull.http_bytes, full_pull.http_bytes) <= 0.05);
  CHECK(share(index_gates.http_bytes, index_full.http_bytes) <= 0.05);
  for (const fs::path& pool : {dir / "pool", served, dir / "mine"})
    for (const auto& [version, src] : {std::pair{"1.0.0", v1}, std::pair{"1.1.0", v2}})
      CHECK(read_text(pool / "bundles" / "sharing" / version / "adapter.safetensors") ==
            read_text(src / "adapter.safetensors"));

  // A server that ignores Range: the new version comes whole, and is the same file.
  {
    NginxOptions plain;
    plain.static_root = dir / "www";
    plain.ignore_ranges = true;
    Nginx whole_only(dir / "nginx-whole", plain);
    const auto first = pull(whole_only.base() + "/static/pool/pool.json", dir / "whole", {"sharing@1.0.0"});
    REQUIRE(first.installed == 1);
    const auto second = pull(whole_only.base() + "/static/pool/pool.json", dir / "whole");
    REQUIRE(second.installed == 1);
    CHECK(second.reused_bytes == 0);
    CHECK(second.http_bytes > fs::file_size(v2 / "adapter.safetensors"));
    CHECK(read_text(dir / "whole" / "bundles" / "sharing" / "1.1.0" / "adapter.safetensors") ==
          read_text(v2 / "adapter.safetensors"));
  }

  // A gate part swapped in the store is refused by its signed hash; nothing of 1.1.0 is
  // installed, 1.0.0 (which does not use it) still is.
  const auto m2 = bundle::read_manifest(v2);
  const auto& tensors = m2.files[0].tensors->tensors;
  const auto gate_it = std::find_if(tensors.begin(), tensors.end(), [](const auto& t) { return t.name.ends_with(".gate"); });
  REQUIRE(gate_it != tensors.end());
  const auto& gate = *gate_it;
  std::string bytes = read_text(dir / "dav" / gate.sha256);
  bytes[0] = static_cast<char>(bytes[0] ^ 0x55);
  write_text(dir / "dav" / gate.sha256, bytes);
  const auto tampered = pull(hub.string(), dir / "other");
  CHECK(tampered.installed == 1);
  REQUIRE(tampered.rejected == 1);
  for (const auto& b : tampered.bundles)
    if (b.status == "rejected") {
      CHECK(b.version == "1.1.0");
      CHECK_THAT(b.reason, Catch::Contains(gate.sha256));
    }
  CHECK_FALSE(fs::exists(dir / "other" / "bundles" / "sharing" / "1.1.0"));
}

TEST_CASE("a tensor that changed in few elements travels as a sparse delta, rebuilt bit for bit", "[hub][tensors][delta]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::create_directories(dir / "srv");
  fs::path hub_path = make_hub(dir / "srv" / "hub.git", trust);
  GitDaemon daemon(dir / "srv");
  const std::string url = daemon.url("hub.git");  // the hub's hook verifies every push

  auto publish = [&](const fs::path& bundle, const fs::path& delta_from = {}) {
    auto o = publish_options(url, trust, dir / "cache");
    o.delta_from = delta_from;
    return gaggle::hub::publish_bundle(bundle, o);
  };
  auto pull = [&](const fs::path& pool, std::vector<std::string> only = {}) {
    return pull_into(url, pool, trust, std::move(only));
  };

  constexpr int kEdits = 40;  // of 8,192 elements per lora_A
  auto v1 = make_expert(dir / "v1", "1.0.0", 1, alice);
  auto v2 = make_expert(dir / "v2", "1.1.0", 2, alice, kEdits);
  auto same = make_expert(dir / "same", "1.2.0", 2, alice, kEdits);  // v2's tensors, sent whole
  publish(v1);
  REQUIRE(pull(dir / "pool").installed == 1);

  // Not on the hub yet: refused before anything is pushed.
  CHECK_THROWS_WITH(publish(v2, v2), Catch::Contains("--delta-from") && Catch::Contains("1.1.0 is not on hub"));
  const auto with_delta = publish(v2, v1);
  CHECK(with_delta.deltas == kModules);
  CHECK(with_delta.delta_bytes_saved > 0);
  const auto whole = publish(same);
  CHECK(whole.deltas == 0);
  WARN("delta: lora_A with " << kEdits << " of 8192 elements changed; push " << with_delta.bytes_pushed
                             << " B with deltas, " << whole.bytes_pushed << " B whole");
  CHECK(with_delta.bytes_pushed * 4 < whole.bytes_pushed);

  // The hub keeps <sha256>.delta for each lora_A and nothing whole for it.
  const auto m2 = bundle::read_manifest(v2);
  std::string a_sha;
  for (const auto& t : m2.files[0].tensors->tensors)
    if (t.name.ends_with(".lora_A")) a_sha = t.sha256;
  auto tree = run_command({"git", "--git-dir", hub_path.string(), "ls-tree", "-r", "--name-only", "main"}).out;
  const std::string parts = "experts/sharing/1.1.0/adapter.safetensors.parts/";
  CHECK_THAT(tree, Catch::Contains(parts + a_sha + ".delta"));
  CHECK_THAT(tree, !Catch::Contains(parts + a_sha + "\n"));

  // Pulled beside 1.0.0 (the base from the pool) and into an empty pool (the base from
  // the hub's 1.0.0): the exact signed file either way.
  auto beside = pull(dir / "pool");
  CHECK(beside.installed == 2);
  auto fresh = pull(dir / "fresh", {"sharing@1.1.0"});
  CHECK(fresh.installed == 1);
  for (const fs::path& pool : {dir / "pool", dir / "fresh"})
    CHECK(read_text(pool / "bundles" / "sharing" / "1.1.0" / "adapter.safetensors") ==
          read_text(v2 / "adapter.safetensors"));

  // A delta whose values were changed on the hub rebuilds into a tensor that does not
  // match its signed hash: refused, not installed.
  tamper_on_hub(hub_path, dir / "work", parts + a_sha + ".delta",
                [](std::string& bytes) { bytes.back() = static_cast<char>(bytes.back() ^ 0x55); });
  auto tampered = pull(dir / "other", {"sharing@1.1.0"});
  CHECK(tampered.installed == 0);
  REQUIRE(tampered.rejected == 1);
  CHECK_THAT(tampered.bundles[0].reason, Catch::Contains(a_sha) && Catch::Contains("does not match"));
  CHECK_FALSE(fs::exists(dir / "other" / "bundles" / "sharing" / "1.1.0"));
}

// Hidden (never asserts timings): how long a first pull of an expert kept as hundreds of
// blob-store parts takes, one HTTP request per part.
TEST_CASE("figures: a first pull of an expert stored as 384 blob-store parts over HTTPS", "[.][figures][blobs]") {
  if (nginx_missing()) return;
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  NginxOptions no;
  no.dav_root = dir / "dav";
  no.tls = true;  // every new connection pays a TLS handshake, as a real store's would
  Nginx nginx(dir / "nginx", no);
  // 96 modules x 4 tensors of a t5-small-sized expert's shape (d 512, r 16).
  fs::create_directories(dir / "big");
  io::SafetensorsWriter w;
  for (int m = 0; m < 96; ++m) {
    const std::string name = "module." + std::to_string(m);
    w.add_f32(name + ".lora_A", {kRank, kDim}, random_floats(kRank * kDim, 100 + m));
    w.add_f32(name + ".lora_B", {kDim, kRank}, random_floats(kRank * kDim, 200 + m));
    w.add_f32(name + ".avg_act", {kDim}, random_floats(kDim, 300 + m));
    w.add_f32(name + ".gate", {kDim}, random_floats(kDim, 400 + m));
  }
  w.write(dir / "big" / "adapter.safetensors");
  bundle::Manifest m;
  m.name = "big";
  m.version = "1.0.0";
  m.base_fingerprint = "sha256:" + std::string(64, '0');
  bundle::write_manifest(dir / "big", m);
  auto po = publish_options(hub.string(), trust, dir / "cache");
  po.key = alice.key;
  po.blob_store = nginx.base() + "/blobs/";
  po.blob_threshold = 1000;
  po.ca_file = nginx.ca_file();
  auto t0 = std::chrono::steady_clock::now();
  auto pushed = gaggle::hub::publish_bundle(dir / "big", po);
  auto t1 = std::chrono::steady_clock::now();
  gaggle::hub::PullOptions o;
  o.hub = hub.string();
  o.pool_dir = dir / "pool";
  o.trust_file = trust;
  o.ca_file = nginx.ca_file();
  auto pulled = gaggle::hub::pull_pool(o);
  auto t2 = std::chrono::steady_clock::now();
  REQUIRE(pulled.installed == 1);
  WARN("384 parts, " << pushed.bytes_uploaded << " B: publish "
                     << std::chrono::duration<double>(t1 - t0).count() << " s, first pull "
                     << std::chrono::duration<double>(t2 - t1).count() << " s (" << pulled.http_bytes << " B)");
}
