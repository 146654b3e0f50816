#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace gaggle::test;

TEST_CASE("inspect prints a table of a golden checkpoint", "[cmd][inspect]") {
  auto r = run_gaggle({"inspect", (data_dir() / "golden/t5-v1_1-tiny/model.safetensors").string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("decoder.block.0.layer.2.DenseReluDense.wi_0.weight"));
  CHECK_THAT(r.out, Catch::Contains("F32"));
  CHECK_THAT(r.out, Catch::Contains("tensors,"));
  CHECK(r.err.empty());
}

TEST_CASE("inspect --json lists every tensor", "[cmd][inspect]") {
  auto r = run_gaggle({"inspect", "--json", (data_dir() / "golden/t5-v1_0-tiny/model.safetensors").string()});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["tensors"].is_array());
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "shared.weight") {
      found = true;
      CHECK(t["dtype"] == "F32");
      CHECK(t["shape"] == nlohmann::json::array({96, 32}));
      CHECK(t["bytes"] == 96 * 32 * 4);
    }
  }
  CHECK(found);
}

TEST_CASE("inspect exits 1 with a clear message on a malformed file", "[cmd][inspect]") {
  TempDir dir;
  write_text(dir / "bad.safetensors", std::string("\x08\0\0\0\0\0\0\0{\"a\":1}", 15));
  auto r = run_gaggle({"inspect", (dir / "bad.safetensors").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(r.err, Catch::Contains("bad.safetensors"));
  auto missing = run_gaggle({"inspect", (dir / "missing.safetensors").string()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("missing.safetensors"));
}

namespace {

// A safetensors file with `header` (JSON) and `data_bytes` zero bytes of data.
std::string safetensors_bytes(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("inspect prints a file's names, metadata and errors inert on a terminal", "[cmd][inspect][terminal]") {
  TempDir dir;
  // JSON escapes the file's author could use to clear the screen, retitle the window and
  // overwrite the line (ESC [2J, OSC 0 ... BEL, CR).
  write_text(dir / "evil.safetensors",
             safetensors_bytes(R"({"__metadata__":{"note":"\u001b]0;pwned\u0007fine\rok"},)"
                               R"("w\u001b[2J":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                               4));
  auto r = run_gaggle({"inspect", (dir / "evil.safetensors").string()});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find('\r') == std::string::npos);
  CHECK(r.out.find('\x07') == std::string::npos);
  CHECK_THAT(r.out, Catch::Contains("w\\x1B[2J"));
  CHECK_THAT(r.out, Catch::Contains("metadata: note = \\x1B]0;pwned\\x07fine\\x0Dok"));

  // An error that quotes the file (an unknown dtype) is printed inert too.
  write_text(dir / "bad-dtype.safetensors",
             safetensors_bytes(R"({"w":{"dtype":"\u001b[2JX","shape":[1],"data_offsets":[0,4]}})", 4));
  auto bad = run_gaggle({"inspect", (dir / "bad-dtype.safetensors").string()});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::StartsWith("gaggle: error: "));
  CHECK(bad.err.find('\x1b') == std::string::npos);
  CHECK_THAT(bad.err, Catch::Contains("\\x1B[2JX"));
}

TEST_CASE("inspect describes an expert bundle from its manifest, without verifying it", "[cmd][inspect][bundle]") {
  TempDir dir;
  const auto b = dir / "demo";
  auto made = run_gaggle({"debug", "make-bundle", "--out", b.string(), "--name", "demo", "--version", "1.2.3"});
  REQUIRE(made.exit_code == 0);
  auto r = run_gaggle({"inspect", b.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("bundle:        demo@1.2.3"));
  CHECK_THAT(r.out, Catch::Contains("method:        phatgoose (rank 4, 4 modules)"));
  CHECK_THAT(r.out, Catch::Contains("gate:          none"));
  CHECK_THAT(r.out, Catch::Contains("signature:     none: unsigned"));
  CHECK_THAT(r.out,
             Catch::Contains("1 file:") && Catch::Contains("adapter.safetensors") && Catch::Contains("12 tensors"));

  REQUIRE(run_gaggle({"keygen", "-f", (dir / "k").string(), "-C", "alice"}).exit_code == 0);
  REQUIRE(run_gaggle({"sign", b.string(), "--key", (dir / "k").string()}).exit_code == 0);
  CHECK_THAT(run_gaggle({"inspect", b.string()}).out, Catch::Contains("signature:     manifest.json.sig (not checked"));

  // A manifest's free text is printed inert, and a file the manifest lists but the
  // directory lacks is marked; --json says the same for scripts.
  auto manifest = nlohmann::json::parse(read_text(b / "manifest.json"));
  manifest["description"] = "\x1b]0;pwned\x07 tiny";
  write_text(b / "manifest.json", manifest.dump(2));
  std::filesystem::remove(b / "adapter.safetensors");
  auto edited = run_gaggle({"inspect", b.string()});
  REQUIRE(edited.exit_code == 0);
  CHECK(edited.out.find('\x1b') == std::string::npos);
  CHECK_THAT(edited.out, Catch::Contains("description:   \\x1B]0;pwned\\x07 tiny"));
  CHECK_THAT(edited.out, Catch::Contains("MISSING"));
  auto j = nlohmann::json::parse(run_gaggle({"inspect", "--json", b.string()}).out);
  CHECK(j["kind"] == "bundle");
  CHECK(j["signature_file"] == true);
  CHECK(j["files_present"]["adapter.safetensors"] == false);
  CHECK(j["manifest"]["name"] == "demo");

  // A directory that is none of the kinds inspect knows: a usage error that lists them.
  std::filesystem::create_directories(dir / "empty");
  auto none = run_gaggle({"inspect", (dir / "empty").string()});
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("manifest.json") && Catch::Contains("config.json"));
  // A pool: pointed at the verb that lists it.
  write_text(dir / "empty" / "pool.json", R"({"format_version": 1, "bundles": []})");
  auto pool = run_gaggle({"inspect", (dir / "empty").string()});
  CHECK(pool.exit_code == 2);
  CHECK_THAT(pool.err, Catch::Contains("is a pool") && Catch::Contains("gaggle pool list --pool"));
  // A PEFT adapter: pointed at import-peft.
  std::filesystem::create_directories(dir / "peft");
  write_text(dir / "peft" / "adapter_config.json", R"({"peft_type": "LORA", "r": 8})");
  auto peft = run_gaggle({"inspect", (dir / "peft").string()});
  CHECK(peft.exit_code == 2);
  CHECK_THAT(peft.err, Catch::Contains("PEFT adapter") && Catch::Contains("gaggle import-peft"));
}
