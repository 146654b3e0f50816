// gaggle diff's comparison (bundle/diff.h): unchanged by hash without reading data,
// changed with the norm of the difference, added, removed, and a shape change.
#include <catch2/catch.hpp>

#include <cmath>

#include <nlohmann/json.hpp>

#include "bundle/diff.h"
#include "bundle/manifest.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

fs::path bundle_with(const fs::path& dir, const std::string& version,
                     const std::vector<std::pair<std::string, std::vector<float>>>& tensors, bool index = true) {
  fs::create_directories(dir);
  io::SafetensorsWriter w;
  for (const auto& [name, values] : tensors) w.add_f32(name, {static_cast<std::int64_t>(values.size())}, values);
  w.write(dir / "adapter.safetensors");
  write_text(dir / "train-log.jsonl", version + "\n");
  bundle::Manifest m;
  m.name = "d";
  m.version = version;
  m.base_fingerprint = "sha256:" + std::string(64, '2');
  bundle::write_manifest(dir, m);
  if (!index) {  // a manifest from before tensor indexes
    auto old = bundle::read_manifest(dir);
    for (auto& f : old.files) f.tensors.reset();
    write_text(dir / "manifest.json", bundle::serialize_manifest(old));
  }
  return dir;
}

}  // namespace

TEST_CASE("diff tells unchanged, changed (with norms), added and removed tensors apart", "[bundle][diff]") {
  TempDir tmp;
  for (bool index : {true, false}) {
    INFO("tensor index in the manifests: " << index);
    auto a = bundle_with(tmp / ("a" + std::to_string(index)), "1.0.0",
                         {{"m.lora_A", {1, 2, 3}}, {"m.gate", {3, 4}}, {"m.old", {1}}, {"m.shape", {1, 2}}}, index);
    auto b = bundle_with(tmp / ("b" + std::to_string(index)), "1.1.0",
                         {{"m.lora_A", {1, 2, 3}}, {"m.gate", {3, 5}}, {"m.new", {2}}, {"m.shape", {1, 2, 3}}}, index);
    auto d = bundle::diff_bundles(a, b);
    CHECK(d.from == "d@1.0.0");
    CHECK(d.to == "d@1.1.0");
    CHECK(d.unchanged == 1);
    CHECK(d.changed == 3);  // gate, shape, and train-log.jsonl
    CHECK(d.added == 1);
    CHECK(d.removed == 1);
    auto j = d.to_json(/*include_unchanged=*/true);
    std::map<std::string, nlohmann::json> by_name;
    for (const auto& f : j["files"])
      if (f.contains("tensors"))
        for (const auto& t : f["tensors"]) by_name[t["name"]] = t;
    CHECK(by_name["m.lora_A"]["change"] == "unchanged");
    CHECK(by_name["m.gate"]["change"] == "changed");
    CHECK(by_name["m.gate"]["diff_norm"].get<double>() == Approx(1.0));
    CHECK(by_name["m.gate"]["relative_change"].get<double>() == Approx(1.0 / 5.0));
    CHECK(by_name["m.new"]["change"] == "added");
    CHECK(by_name["m.old"]["change"] == "removed");
    CHECK(by_name["m.shape"]["change"] == "changed");
    CHECK(by_name["m.shape"]["old_shape"] == nlohmann::json::array({2}));
    CHECK_FALSE(by_name["m.shape"].contains("diff_norm"));
    // Without --all the unchanged tensor is left out.
    auto brief = d.to_json(false);
    for (const auto& f : brief["files"])
      if (f.contains("tensors"))
        for (const auto& t : f["tensors"]) CHECK(t["change"] != "unchanged");
  }
}

TEST_CASE("diff refuses a bundle whose files do not match its manifest", "[bundle][diff]") {
  TempDir tmp;
  auto a = bundle_with(tmp / "a", "1.0.0", {{"m.x", {1}}});
  auto b = bundle_with(tmp / "b", "1.0.1", {{"m.x", {2}}});
  write_text(b / "train-log.jsonl", "edited\n");
  CHECK_THROWS_WITH(bundle::diff_bundles(a, b), Catch::Contains("train-log.jsonl"));
}
