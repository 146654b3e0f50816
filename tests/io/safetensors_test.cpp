#include "io/safetensors.h"

#include <catch2/catch.hpp>
#include <cstring>

#include "io/error.h"
#include "support/test_support.h"

using namespace gaggle;
using gaggle::io::DType;
namespace fs = std::filesystem;

namespace {

// A safetensors image from a raw header text and `data_size` bytes of data.
std::string image(const std::string& header, std::size_t data_size, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  std::uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + std::string(data_size, '\x01');
}

std::string parse_error(const std::string& bytes) {
  try {
    io::SafetensorsHeader::parse(std::as_bytes(std::span(bytes.data(), bytes.size())), "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype", "[io][safetensors]") {
  test::TempDir dir;
  io::SafetensorsWriter w;
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};
  std::map<std::string, std::vector<std::byte>> expected;
  int seed = 1;
  for (DType d : all) {
    std::vector<std::int64_t> shape{2, 3};
    std::vector<std::byte> bytes(6 * io::dtype_size(d));
    for (auto& b : bytes) b = static_cast<std::byte>((seed++ * 37) & (d == DType::BOOL ? 1 : 0xff));
    std::string name = "t." + std::string(io::dtype_name(d));
    w.add(name, d, shape, bytes);
    expected[name] = bytes;
  }
  w.add("scalar", DType::F32, {}, std::as_bytes(std::span<const float>(std::vector<float>{3.5f})));
  w.add("empty", DType::F32, {0, 4}, {});
  w.set_metadata("format", "pt");
  w.write(dir / "all.safetensors");

  auto f = io::SafetensorsFile::open(dir / "all.safetensors");
  REQUIRE(f.tensors().size() == 12);
  CHECK(f.metadata().at("format") == "pt");
  for (const auto& [name, bytes] : expected) {
    const auto& info = f.at(name);
    CHECK(info.shape == std::vector<std::int64_t>{2, 3});
    auto got = f.data(info);
    REQUIRE(got.size() == bytes.size());
    CHECK(std::memcmp(got.data(), bytes.data(), bytes.size()) == 0);
  }
  CHECK(f.at("scalar").shape.empty());
  CHECK(f.at("scalar").numel() == 1);
  CHECK(f.at("empty").nbytes() == 0);

  // The header block is padded with spaces to a multiple of 8, metadata first.
  std::string raw = test::read_text(dir / "all.safetensors");
  std::uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(raw.substr(8, 16) == "{\"__metadata__\":");
  CHECK(raw[8 + n - 1] != '\0');
}

TEST_CASE("safetensors writer reproduces Hugging Face's bytes", "[io][safetensors]") {
  // Re-writing the golden checkpoints (written by HF's own code) gives identical files.
  test::TempDir dir;
  for (const char* model : {"t5-v1_0-tiny", "t5-v1_1-tiny", "llama-tiny"}) {
    fs::path src = test::data_dir() / "golden" / model / "model.safetensors";
    auto f = io::SafetensorsFile::open(src);
    io::SafetensorsWriter w;
    for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
    for (const auto& t : f.tensors()) w.add(t.name, t.dtype, t.shape, f.data(t));
    w.write(dir / "copy.safetensors");
    INFO(model);
    CHECK(test::read_text(dir / "copy.safetensors") == test::read_text(src));
  }
}

TEST_CASE("safetensors reads the golden checkpoints", "[io][safetensors]") {
  auto f = io::SafetensorsFile::open(test::data_dir() / "golden/t5-v1_0-tiny/model.safetensors");
  const auto& q = f.at("encoder.block.0.layer.0.SelfAttention.q.weight");
  CHECK(q.dtype == DType::F32);
  CHECK(q.shape == std::vector<std::int64_t>{32, 32});
  CHECK(f.find("lm_head.weight") == nullptr);  // tied: only shared.weight is stored
  CHECK(f.find("shared.weight") != nullptr);
  CHECK_THROWS_WITH(f.at("nope"), Catch::Contains("no tensor 'nope'"));
}

TEST_CASE("safetensors rejects malformed files with a clear error", "[io][safetensors]") {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  CHECK(parse_error(image("{" + ok_entry + "}", 8)).empty());

  SECTION("truncated file") { CHECK_THAT(parse_error("\x10\0\0"), Catch::Contains("shorter than the 8-byte")); }
  SECTION("header length past the end") {
    std::string img = image("{" + ok_entry + "}", 8);
    std::uint64_t n = 1000;
    std::memcpy(img.data(), &n, 8);
    CHECK_THAT(parse_error(img), Catch::Contains("runs past the end of the file"));
  }
  SECTION("header length over 100 MB") {
    std::string img(16, '\0');
    std::uint64_t n = 200'000'000;
    std::memcpy(img.data(), &n, 8);
    CHECK_THAT(parse_error(img), Catch::Contains("exceeds the 100 MB limit"));
  }
  SECTION("header not JSON") { CHECK_THAT(parse_error(image("{\"a\":[1,", 0)), Catch::Contains("not valid JSON")); }
  SECTION("a number too large for a double (found by the fuzzer)") {
    CHECK_THAT(parse_error(image(R"({"__metadata__":{"f":1e999}})", 0)), Catch::Contains("not valid JSON"));
  }
  SECTION("header not an object") { CHECK_THAT(parse_error(image("[1,2]", 0)), Catch::Contains("not a JSON object")); }
  SECTION("unknown dtype") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", 8)),
               Catch::Contains("tensor 'a': unknown dtype 'F31'"));
  }
  SECTION("float8 is reported as unsupported") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2)),
               Catch::Contains("F8_E4M3 is not supported"));
  }
  SECTION("negative shape") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
               Catch::Contains("tensor 'a': negative dimension"));
  }
  SECTION("offsets out of range") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)),
               Catch::Contains("tensor 'a': data_offsets [0, 16] lie outside the data area (8 bytes)"));
  }
  SECTION("offsets reversed") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
               Catch::Contains("is before begin"));
  }
  SECTION("overlapping ranges") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)),
               Catch::Contains("tensor 'b' overlaps tensor 'a'"));
  }
  SECTION("shape and bytes disagree") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
               Catch::Contains("tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets span 8"));
  }
  SECTION("shape overflow") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", 8)),
               Catch::Contains("more than 2^64"));
  }
  SECTION("hole between tensors") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20)),
               Catch::Contains("hole of 4 bytes before tensor 'b'"));
  }
  SECTION("trailing bytes") {
    CHECK_THAT(parse_error(image("{" + ok_entry + "}", 12)), Catch::Contains("4 bytes after the last tensor 'a'"));
  }
  SECTION("metadata must be a string map") {
    CHECK_THAT(parse_error(image(R"({"__metadata__":{"x":1}})", 0)), Catch::Contains("__metadata__['x'] is not a string"));
  }
  SECTION("missing fields") {
    CHECK_THAT(parse_error(image(R"({"a":{"dtype":"F32","shape":[2]}})", 8)), Catch::Contains("data_offsets"));
    CHECK_THAT(parse_error(image(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8)), Catch::Contains("'dtype'"));
    CHECK_THAT(parse_error(image(R"({"a":7})", 0)), Catch::Contains("tensor 'a': entry is not a JSON object"));
  }
  SECTION("every error names the file") {
    CHECK_THAT(parse_error(image("{\"a\":", 0)), Catch::StartsWith("bad.safetensors: "));
  }
}

TEST_CASE("safetensors writer refuses inconsistent tensors", "[io][safetensors]") {
  io::SafetensorsWriter w;
  std::vector<float> v(3);
  CHECK_THROWS_WITH(w.add_f32("x", {2, 2}, v), Catch::Contains("needs 16 bytes, got 12"));
  w.add_f32("x", {3}, v);
  CHECK_THROWS_WITH(w.add_f32("x", {3}, v), Catch::Contains("added twice"));
}

TEST_CASE("safetensors writer stores floats as F16 or BF16 on request", "[io][safetensors]") {
  test::TempDir tmp;
  io::SafetensorsWriter w;
  // 0.1 rounds to nearest even: 0x2e66 in half, 0x3dcd in bfloat16 (bits worked out by hand).
  std::vector<float> v = {1.0f, -2.0f, 0.1f};
  w.add_floats_as("h", DType::F16, {3}, v);
  w.add_floats_as("b", DType::BF16, {3}, v);
  w.add_floats_as("f", DType::F32, {3}, v);
  CHECK_THROWS_WITH(w.add_floats_as("i", DType::I16, {3}, v), Catch::Contains("F32, F16 or BF16"));
  w.write(tmp / "m.safetensors");
  auto f = io::SafetensorsFile::open(tmp / "m.safetensors");
  auto bits = [&](const std::string& name) {
    auto d = f.data(name);
    std::vector<std::uint16_t> out(d.size() / 2);
    std::memcpy(out.data(), d.data(), d.size());
    return out;
  };
  CHECK(f.at("h").dtype == DType::F16);
  CHECK(bits("h") == std::vector<std::uint16_t>{0x3c00, 0xc000, 0x2e66});
  CHECK(f.at("b").dtype == DType::BF16);
  CHECK(bits("b") == std::vector<std::uint16_t>{0x3f80, 0xc000, 0x3dcd});
  CHECK(f.at("f").dtype == DType::F32);
  CHECK(f.at("f").nbytes() == 12);
}

TEST_CASE("half and bfloat16 conversions round-trip", "[io][dtype]") {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    CHECK(io::f16_bits_to_f32(io::f32_to_f16_bits(f)) == f);
  }
  CHECK(io::f32_to_f16_bits(1.0f) == 0x3c00);
  CHECK(io::f32_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(io::bf16_bits_to_f32(io::f32_to_bf16_bits(-3.0f)) == -3.0f);
  std::uint16_t halves[2] = {0x3c00, 0xc000};
  float out[2];
  io::convert_to_f32(DType::F16, std::as_bytes(std::span(halves)), out, 2);
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
}
