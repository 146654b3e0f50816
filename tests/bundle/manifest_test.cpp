#include <catch2/catch.hpp>

#include "bundle/demo_bundle.h"
#include "bundle/manifest.h"
#include "io/error.h"
#include "io/sha256.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::bundle;
using json = nlohmann::json;

namespace {

json valid_manifest() {
  return json::parse(R"({
    "format_version": 1, "name": "sst2", "version": "1.0.0-rc.1",
    "base_fingerprint": "sha256:)" + std::string(64, 'a') + R"(",
    "method": "phatgoose", "rank": 16, "author": {"key": "SHA256:x"},
    "files": [{"path": "adapter.safetensors", "size": 10, "sha256": ")" + std::string(64, 'b') + R"("}]})");
}

std::string parse_error(const json& j) {
  try {
    parse_manifest(j.dump(), "manifest.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("a valid manifest parses and keeps its other fields", "[bundle][manifest]") {
  Manifest m = parse_manifest(valid_manifest().dump(), "manifest.json");
  CHECK(m.name == "sst2");
  CHECK(m.version == "1.0.0-rc.1");
  CHECK(m.base_fingerprint == "sha256:" + std::string(64, 'a'));
  REQUIRE(m.files.size() == 1);
  CHECK(m.files[0].size == 10);
  CHECK(m.body["method"] == "phatgoose");
  CHECK(m.body["author"]["key"] == "SHA256:x");
  CHECK_FALSE(m.body.contains("files"));
  // Serialization is deterministic and reads back to the same thing.
  std::string bytes = serialize_manifest(m);
  CHECK(serialize_manifest(parse_manifest(bytes, "m")) == bytes);
  CHECK(bytes.back() == '\n');
}

TEST_CASE("manifests that fail their schema are refused with the field's pointer", "[bundle][manifest]") {
  auto with = [](const char* ptr, json v) {
    json j = valid_manifest();
    j[json::json_pointer(ptr)] = std::move(v);
    return parse_error(j);
  };
  CHECK_THAT(with("/name", "SST2"), Catch::Contains("manifest.json: /name:") && Catch::Contains("pattern"));
  CHECK_THAT(with("/version", "1.0"), Catch::Contains("/version:"));
  CHECK_THAT(with("/base_fingerprint", "md5:00"), Catch::Contains("/base_fingerprint:"));
  CHECK_THAT(with("/files/0/sha256", "XYZ"), Catch::Contains("/files/0/sha256:"));
  CHECK_THAT(with("/files/0/size", -1), Catch::Contains("/files/0/size:"));
  CHECK_THAT(with("/files/0/extra", 1), Catch::Contains("/files/0/extra: is not an allowed field"));
  CHECK_THAT(with("/rank", "16"), Catch::Contains("/rank: must be an integer"));
  json j = valid_manifest();
  j.erase("files");
  CHECK_THAT(parse_error(j), Catch::Contains("/files: is required but missing"));
  CHECK_THAT(parse_error(json::array()), Catch::Contains("must be an object"));
  CHECK_THAT(with("/format_version", 2), Catch::Contains("newer than this gaggle reads"));
  CHECK_THAT(parse_error(json::parse("{}")), Catch::Contains("manifest.json"));
  // A parts base must end in '/', and needs a tensor index to say which parts exist.
  CHECK_THAT(with("/files/0/parts_url", "https://store/blobs"), Catch::Contains("/files/0/parts_url:"));
  CHECK_THAT(with("/files/0/parts_url", "https://store/blobs/"),
             Catch::Contains("/files/0: file 'adapter.safetensors' has a parts_url but no safetensors index"));
  // Long strings, inside the 1 MB limit, are checked without a crash: the schema's patterns
  // ran through std::regex, whose recursion overflowed the stack on a 300 KB URL.
  CHECK_THAT(with("/files/0/url", "https://x/" + std::string(300000, 'a')),
             Catch::Contains("/files/0/url: is too long (300010 characters"));
  CHECK_THAT(with("/description", std::string(500000, 'd')), Catch::Contains("/description: is too long"));
  CHECK_THAT(with("/files/0/path", std::string(300000, 'p')), Catch::Contains("/files/0/path:"));
  // Deep nesting in a field the schema lets through (copying it recursed per level).
  std::string deep = valid_manifest().dump();
  deep.insert(deep.size() - 1, R"(, "extra": )" + std::string(200000, '[') + std::string(200000, ']'));
  CHECK_THROWS_WITH(parse_manifest(deep, "manifest.json"), Catch::Contains("nested deeper than 64 levels"));
}

TEST_CASE("manifest paths stay inside the bundle", "[bundle][manifest]") {
  auto path_error = [](const std::string& path) {
    json j = valid_manifest();
    j["files"][0]["path"] = path;
    return parse_error(j);
  };
  CHECK_THAT(path_error("../etc/passwd"), Catch::Contains("escapes the bundle directory"));
  CHECK_THAT(path_error("a/../../x"), Catch::Contains("escapes"));
  CHECK_THAT(path_error("/etc/passwd"), Catch::Contains("/files/0/path"));
  CHECK_THAT(path_error("a//b"), Catch::Contains("empty component"));
  CHECK_THAT(path_error("a/./b"), Catch::Contains("'.' component"));
  CHECK_THAT(path_error("manifest.json.sig"), Catch::Contains("names the manifest"));
  CHECK(path_error("sub/adapter.safetensors") == "accepted");
  json dup = valid_manifest();
  dup["files"].push_back(dup["files"][0]);
  CHECK_THAT(parse_error(dup), Catch::Contains("listed twice"));
}

TEST_CASE("oversized manifests are refused before parsing", "[bundle][manifest]") {
  json j = valid_manifest();
  j["description"] = std::string(2'000'000, 'x');
  CHECK_THAT(parse_error(j), Catch::Contains("the limit is 1048576"));
  test::TempDir dir;
  test::write_text(dir / "manifest.json", j.dump());
  CHECK_THROWS_WITH(read_manifest(dir.path()), Catch::Contains("the limit is"));
}

TEST_CASE("write_manifest lists every file with its size and sha256", "[bundle][manifest]") {
  test::TempDir dir;
  Manifest made = make_demo_bundle(dir / "b", {});
  REQUIRE(made.files.size() == 1);
  CHECK(made.files[0].path == "adapter.safetensors");
  CHECK(made.files[0].sha256 == io::sha256_file_hex(dir / "b" / "adapter.safetensors"));
  std::filesystem::create_directories(dir / "b" / "retrieval");
  test::write_text(dir / "b" / "retrieval" / "emb.bin", "12345");
  test::write_text(dir / "b" / "manifest.json.sig", "stale");
  Manifest m = read_manifest(dir / "b");
  m.body["note"] = "x";
  write_manifest(dir / "b", m);
  Manifest back = read_manifest(dir / "b");
  REQUIRE(back.files.size() == 2);
  const FileEntry* e = back.find("retrieval/emb.bin");
  REQUIRE(e);
  CHECK(e->size == 5);
  CHECK(back.body["note"] == "x");
  CHECK_FALSE(std::filesystem::exists(dir / "b" / "manifest.json.sig"));  // a stale signature is removed
  // Files stored at a URL survive a rewrite even when absent.
  back.files.push_back({"big.safetensors", 100, std::string(64, 'c'), "https://blobs.example.com/c"});
  write_manifest(dir / "b", back);
  CHECK(read_manifest(dir / "b").find("big.safetensors"));
  // Same seed, same bytes.
  make_demo_bundle(dir / "c", {});
  CHECK(io::sha256_file_hex(dir / "c" / "adapter.safetensors") == made.files[0].sha256);
  CHECK_THROWS_MATCHES(make_demo_bundle(dir / "c", {}), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == ErrorCode::exists; }));
}
