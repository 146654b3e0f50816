// The manifest's per-tensor index (bundle/tensor_index.h): written for every safetensors
// file, checked against the file, and a bundle kept as parts verifies like a whole one.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "bundle/contents.h"
#include "bundle/manifest.h"
#include "bundle/tensor_index.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

fs::path make_bundle_dir(const fs::path& dir) {
  fs::create_directories(dir);
  io::SafetensorsWriter w;
  w.add_f32("m.lora_A", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  w.add_f32("m.lora_B", {3, 2}, std::vector<float>{0, 0, 0, 0, 0, 0});
  w.add_f32("m.zeros", {3, 2}, std::vector<float>{0, 0, 0, 0, 0, 0});  // equal to lora_B: one part
  w.add_f32("m.gate", {3}, std::vector<float>{7, 8, 9});
  w.set_metadata("format", "gaggle-expert");
  w.write(dir / "adapter.safetensors");
  write_text(dir / "README.md", "not a tensor file\n");
  bundle::Manifest m;
  m.name = "idx";
  m.version = "1.0.0";
  m.base_fingerprint = "sha256:" + std::string(64, '1');
  bundle::write_manifest(dir, m);
  return dir;
}

// Moves adapter.safetensors into adapter.safetensors.parts/ as a hub keeps it.
void split_on_disk(const fs::path& dir, const bundle::FileEntry& f) {
  std::string bytes = read_text(dir / f.path);
  fs::create_directories(dir / (f.path + ".parts"));
  for (const auto& part : bundle::split_parts(*f.tensors, bytes))
    write_text(dir / (f.path + ".parts") / part.name, std::string(part.bytes));
  fs::remove(dir / f.path);
}

}  // namespace

TEST_CASE("write_manifest indexes every tensor of a safetensors file, in data order", "[bundle][tensors]") {
  TempDir tmp;
  auto dir = make_bundle_dir(tmp / "b");
  auto m = bundle::read_manifest(dir);
  const auto* f = m.find("adapter.safetensors");
  REQUIRE(f);
  REQUIRE(f->tensors);
  CHECK_FALSE(m.find("README.md")->tensors);
  const auto& t = f->tensors->tensors;
  REQUIRE(t.size() == 4);
  CHECK(t[0].name == "m.gate");  // the writer sorts by name
  CHECK(t[1].name == "m.lora_A");
  CHECK(t[1].dtype == "F32");
  CHECK(t[1].shape == std::vector<std::int64_t>{2, 3});
  CHECK(t[1].offset == 12);
  CHECK(t[1].size == 24);
  CHECK(t[2].sha256 == t[3].sha256);  // lora_B and zeros hold the same bytes
  // Parsing what was written gives the same index (it is part of the signed bytes).
  auto again = bundle::parse_manifest(bundle::serialize_manifest(m), "again");
  CHECK(again.find("adapter.safetensors")->tensors->tensors[1].sha256 == t[1].sha256);
  bundle::check_bundle_files(dir, m, false);
}

TEST_CASE("a manifest whose tensor list does not describe the file is refused", "[bundle][tensors]") {
  TempDir tmp;
  auto dir = make_bundle_dir(tmp / "b");
  auto m = bundle::read_manifest(dir);
  for (auto& f : m.files)
    if (f.tensors) f.tensors->tensors[1].shape = {3, 2};
  try {
    bundle::check_bundle_files(dir, m, false);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::mismatch);
    CHECK_THAT(e.what(), Catch::Contains("tensor 'm.lora_A' differs"));
  }
  nlohmann::json bad = nlohmann::json::parse(bundle::serialize_manifest(bundle::read_manifest(dir)));
  bad["files"][1]["safetensors"]["tensors"][1]["offset"] = 4;
  CHECK_THROWS_WITH(bundle::parse_manifest(bad.dump(), "bad.json"), Catch::Contains("does not follow"));
  bad = nlohmann::json::parse(bundle::serialize_manifest(bundle::read_manifest(dir)));
  bad["files"][1]["safetensors"]["tensors"][0]["sha256"] = "xyz";
  CHECK_THROWS_WITH(bundle::parse_manifest(bad.dump(), "bad.json"), Catch::Contains("bad.json"));
}

TEST_CASE("a bundle kept as tensor parts verifies, and a changed or stray part is refused", "[bundle][tensors]") {
  TempDir tmp;
  auto dir = make_bundle_dir(tmp / "b");
  auto m = bundle::read_manifest(dir);
  const auto& f = *m.find("adapter.safetensors");
  const std::string whole = read_text(dir / "adapter.safetensors");
  split_on_disk(dir, f);
  CHECK(fs::exists(dir / "adapter.safetensors.parts/header"));
  CHECK(std::distance(fs::directory_iterator(dir / "adapter.safetensors.parts"), fs::directory_iterator()) == 4);
  bundle::check_bundle_files(dir, m, false);

  // Joined back, the parts are the signed file.
  auto joined = bundle::join_parts(*f.tensors, f.size, f.sha256, [&](const std::string& n) -> std::optional<std::string> {
    return read_text(dir / "adapter.safetensors.parts" / n);
  }, "adapter.safetensors");
  CHECK(joined == whole);

  const auto& gate = f.tensors->tensors[0];
  const fs::path part = dir / "adapter.safetensors.parts" / gate.sha256;
  std::string bytes = read_text(part);
  bytes[0] = static_cast<char>(bytes[0] ^ 1);
  write_text(part, bytes);
  CHECK_THROWS_WITH(bundle::check_bundle_files(dir, m, false),
                    Catch::Contains(gate.sha256) && Catch::Contains("tensor 'm.gate'") &&
                        Catch::Contains("does not match its size and sha256"));
  bytes[0] = static_cast<char>(bytes[0] ^ 1);
  write_text(part, bytes);
  bundle::check_bundle_files(dir, m, false);
  write_text(dir / "adapter.safetensors.parts" / std::string(64, 'a'), "stray");
  CHECK_THROWS_WITH(bundle::check_bundle_files(dir, m, false), Catch::Contains("is not listed in the manifest"));
}
