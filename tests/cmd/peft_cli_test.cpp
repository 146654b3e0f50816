// import-peft / export-peft from the command line (docs/peft.md): the round trip on the
// real-PEFT fixture, what --help teaches, and a refusal's exit code and words.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

// Copies the tests/data/peft fixture `fixture` into dir/adapter with its adapter_config.json
// text passed through `edit`, and imports it onto the golden tiny T5 as dir/out.
CommandResult import_edited(const TempDir& dir, const std::string& fixture,
                            const std::function<std::string(const std::string&)>& edit) {
  fs::create_directories(dir / "adapter");
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
    fs::copy_file(data_dir() / "peft" / fixture / f, dir / "adapter" / f);
  write_text(dir / "adapter/adapter_config.json", edit(read_text(dir / "adapter/adapter_config.json")));
  return run_gaggle({"import-peft", (dir / "adapter").string(), "--base", (data_dir() / "golden/t5-v1_1-tiny").string(),
                     "--name", "x", "--out", (dir / "out").string()});
}

}  // namespace

TEST_CASE("import-peft then export-peft reproduces the adapter PEFT loaded", "[cmd][peft]") {
  TempDir dir;
  const auto base = data_dir() / "golden/t5-v1_1-tiny";
  auto r = run_gaggle({"import-peft", (data_dir() / "peft/t5-written").string(), "--base", base.string(), "--name",
                       "t5-written", "--out", (dir / "bundle").string(), "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["modules"] == 21);
  CHECK(j["use_rslora"] == true);
  CHECK(j["per_module_ranks"] == true);
  CHECK(j["gates"] == false);
  r = run_gaggle({"export-peft", (dir / "bundle").string(), "--out", (dir / "exported").string()});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("exported 21 LoRA modules"));
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
    CHECK(read_text(dir / "exported" / f) == read_text(data_dir() / "peft/t5-exported" / f));
  // The bundle verifies like any other once signed; unsigned, it is what train-expert writes.
  CHECK(fs::exists(dir / "bundle/manifest.json"));
  CHECK_FALSE(fs::exists(dir / "bundle/manifest.json.sig"));
  // Never over an existing directory without --force.
  r = run_gaggle({"export-peft", (dir / "bundle").string(), "--out", (dir / "exported").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("exists"));
}

TEST_CASE("import-peft refuses a pickle and explains, leaving nothing behind", "[cmd][peft]") {
  TempDir dir;
  fs::create_directories(dir / "adapter");
  fs::copy_file(data_dir() / "peft/t5-written/adapter_config.json", dir / "adapter/adapter_config.json");
  write_text(dir / "adapter/adapter_model.bin", "\x80\x04not really a pickle");
  auto r = run_gaggle({"import-peft", (dir / "adapter").string(), "--base",
                       (data_dir() / "golden/t5-v1_1-tiny").string(), "--name", "x", "--out", (dir / "out").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(r.err, Catch::Contains("adapter_model.bin: is a Python pickle"));
  CHECK_THAT(r.err, Catch::Contains("safe_serialization=True"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("import-peft refuses an adapter_config.json with a number beyond a double's range", "[cmd][peft]") {
  // nlohmann reports such a number as out_of_range, not parse_error; it used to escape the
  // reader and end the process (the same escape fuzz/run.sh pool_tasks found in task lines).
  TempDir dir;
  auto r = import_edited(dir, "t5-written", [](std::string config) {
    return config.insert(config.find('{') + 1, "\"r_extra\": 945e1945, ");
  });
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(r.err, Catch::Contains("adapter_config.json") && Catch::Contains("invalid JSON"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("import-peft refuses a target_modules pattern that would backtrack without end", "[cmd][peft]") {
  // std::regex backtracked without limit on such patterns, against each module path (a
  // downloaded adapter could stall the import); PCRE2 stops at its work limit.
  TempDir dir;
  auto r = import_edited(dir, "t5-peft-made", [](const std::string& text) {
    auto config = nlohmann::json::parse(text);
    config["target_modules"] = "((.*)*)*z?(.*)*$q";
    return config.dump(2);
  });
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("adapter_config.json") && Catch::Contains("target_modules") &&
                        Catch::Contains("more work than any sensible pattern needs"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("import-peft --help names what it refuses and what comes next", "[cmd][peft]") {
  auto r = run_gaggle({"import-peft", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("train-gate"));
  CHECK_THAT(r.out, Catch::Contains("DoRA"));
  r = run_gaggle({"export-peft", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("PeftModel.from_pretrained"));
}
