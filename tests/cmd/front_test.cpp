// gaggle links no LibTorch (it starts in milliseconds for hub hooks and CI); the verbs that
// need LibTorch run in the torch binary, which gaggle exec()s with the same argv
// (cmd/torch_exec.h). These tests look at what the dynamic loader really loads.
#include <algorithm>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "support/test_support.h"

namespace fs = std::filesystem;
using namespace gaggle::test;

namespace {

// The NEEDED entries of an ELF file's dynamic section, as readelf shows them.
std::vector<std::string> needed_libraries(const fs::path& binary) {
  auto r = run_command({"readelf", "-d", binary.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> libs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    auto open = line.find('['), close = line.rfind(']');
    if (open != std::string::npos && close > open) libs.push_back(line.substr(open + 1, close - open - 1));
  }
  return libs;
}

bool mentions_torch(const std::string& text) {
  return text.find("libtorch") != std::string::npos || text.find("libc10") != std::string::npos;
}

// Runs gaggle with LD_DEBUG=libs: the loader reports every library it loads (dlopen too)
// on stderr, each line prefixed with the pid.
CommandResult run_gaggle_traced(const std::vector<std::string>& args, const fs::path& cwd = {}) {
  std::vector<std::string> argv = {"env", "LD_DEBUG=libs", gaggle_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, cwd);
}

// The pids of the LD_DEBUG lines ("   1234:\tfind library=...").
[[maybe_unused]] std::set<std::string> loader_pids(const std::string& err) {
  std::set<std::string> pids;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    auto start = line.find_first_not_of(' ');
    auto colon = line.find(":\t");
    if (start == std::string::npos || colon == std::string::npos || colon <= start) continue;
    std::string pid = line.substr(start, colon - start);
    if (std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; })) pids.insert(pid);
  }
  return pids;
}

}  // namespace

TEST_CASE("gaggle is linked without LibTorch", "[cmd][front]") {
  auto libs = needed_libraries(gaggle_binary());
  REQUIRE(!libs.empty());  // readelf saw the dynamic section (libc at least)
  for (const auto& lib : libs) {
    INFO(lib);
    CHECK(!mentions_torch(lib));
  }
#ifdef GAGGLE_TORCH_BINARY
  // The check can tell: the torch binary does name LibTorch.
  auto torch_libs = needed_libraries(GAGGLE_TORCH_BINARY);
  CHECK(std::any_of(torch_libs.begin(), torch_libs.end(), mentions_torch));
#endif
}

TEST_CASE("torch-free verbs run without loading LibTorch", "[cmd][front]") {
  TempDir dir;
  auto keygen = run_gaggle_traced({"keygen", "-f", (dir / "alice.key").string(), "-C", "alice"});
  REQUIRE(keygen.exit_code == 0);
  REQUIRE(run_gaggle({"debug", "make-bundle", "--out", (dir / "b").string(), "--name", "sst2", "--version", "1.0.0"})
              .exit_code == 0);
  REQUIRE(run_gaggle({"sign", (dir / "b").string(), "--key", (dir / "alice.key").string()}).exit_code == 0);
  std::string pub = read_text(dir / "alice.key.pub");
  write_text(dir / "trust", "alice namespaces=\"gaggle-bundle\" " + pub.substr(0, pub.find(' ', pub.find(' ') + 1)) + "\n");

  struct Case {
    const char* what;
    CommandResult result;
    int exit_code;  // -1: any
  };
  std::vector<Case> cases;
  cases.push_back({"--version", run_gaggle_traced({"--version"}), 0});
  cases.push_back({"--help", run_gaggle_traced({"--help"}), 0});
  cases.push_back({"keygen", keygen, 0});
  cases.push_back({"verify", run_gaggle_traced({"verify", (dir / "b").string(), "--trust", (dir / "trust").string()}), 0});
  cases.push_back({"pool list", run_gaggle_traced({"pool", "list", "--pool", (dir / "no-pool").string()}), 1});
  cases.push_back({"inspect FILE", run_gaggle_traced({"inspect", (dir / "b" / "adapter.safetensors").string()}), 0});
  cases.push_back({"inspect BUNDLE", run_gaggle_traced({"inspect", (dir / "b").string()}), -1});
  cases.push_back({"debug --help", run_gaggle_traced({"debug", "--help"}), 0});
  for (const auto& c : cases) {
    INFO(c.what);
    INFO(c.result.err.substr(0, 2000));
    if (c.exit_code >= 0) CHECK(c.result.exit_code == c.exit_code);
    CHECK(c.result.err.find("find library=libcrypto") != std::string::npos);  // the trace is there
    CHECK(!mentions_torch(c.result.err));
  }
  CHECK_THAT(cases[3].result.out, Catch::Contains("verified: sst2@1.0.0 signed by alice"));
  // gaggle --help and debug --help still list the verbs and tools of the torch binary.
  for (const char* verb : {"train-expert", "train-gate", "assemble", "eval", "generate"})
    CHECK_THAT(cases[1].result.out, Catch::Contains(verb));
  for (const char* tool : {"selfcheck", "route", "forward", "pretrain", "make-bundle"})
    CHECK_THAT(cases[7].result.out, Catch::Contains(tool));
}

#ifdef GAGGLE_TORCH_BINARY

TEST_CASE("a torch verb through gaggle becomes the torch binary in the same process", "[cmd][front]") {
  auto r = run_gaggle_traced({"train-expert", "--help"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Usage: gaggle train-expert"));
  CHECK_THAT(r.out, Catch::Contains("--base"));
  CHECK_THAT(r.out, Catch::Contains("Example:"));
  CHECK(mentions_torch(r.err));                 // LibTorch was loaded ...
  CHECK(loader_pids(r.err).size() == 1);        // ... by the very process gaggle started (exec, no child)
}

TEST_CASE("the torch binary gets a passive OpenMP wait policy unless the user chose one", "[cmd][front]") {
  // Exit code not checked: selfcheck also times a matmul, which a loaded machine may fail.
  auto unset = run_command({"env", "-u", "OMP_WAIT_POLICY", gaggle_binary().string(), "debug", "selfcheck", "--threads", "1"});
  CHECK_THAT(unset.out, Catch::Contains("openmp wait policy           PASSIVE"));
  auto chosen = run_command({"env", "OMP_WAIT_POLICY=ACTIVE", gaggle_binary().string(), "debug", "selfcheck", "--threads", "1"});
  CHECK_THAT(chosen.out, Catch::Contains("openmp wait policy           ACTIVE"));
}

TEST_CASE("a torch verb through gaggle keeps its exit codes and streams", "[cmd][front]") {
  auto usage = run_gaggle({"train-gate", "--no-such-flag"});
  CHECK(usage.exit_code == 2);
  CHECK_THAT(usage.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(usage.err, Catch::Contains("hint: run 'gaggle train-gate --help'"));
  CHECK(usage.out.empty());

  auto tool = run_gaggle({"debug", "route", "--help"});
  CHECK(tool.exit_code == 0);
  CHECK_THAT(tool.out, Catch::Contains("gaggle debug route"));

  // inspect of a base model directory goes to the torch binary; its failures stay exit 1.
  TempDir dir;
  fs::create_directories(dir / "base");
  write_text(dir / "base" / "config.json", "{not json");
  auto bad = run_gaggle_traced({"inspect", (dir / "base").string()});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("config.json"));
  CHECK(mentions_torch(bad.err));
  CHECK(bad.out.empty());

  auto base = run_gaggle({"inspect", "--json", (data_dir() / "golden" / "t5-v1_1-tiny").string()});
  INFO(base.err);
  CHECK(base.exit_code == 0);
  CHECK_THAT(base.out, Catch::Contains("\"fingerprint\""));
}

TEST_CASE("a missing torch binary is a clear error naming where it looked", "[cmd][front]") {
  // A copy of gaggle in a directory without gaggle-torch beside it (nor ../lib/gaggle).
  TempDir dir;
  fs::create_directories(dir / "bin");
  fs::path copy = dir / "bin" / "gaggle";
  fs::copy_file(gaggle_binary(), copy);
  auto r = run_command({"env", "-u", "GAGGLE_TORCH_EXE", copy.string(), "train-expert", "--help"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: 'gaggle train-expert' needs LibTorch"));
  CHECK_THAT(r.err, Catch::Contains((dir / "bin" / "gaggle-torch").string()));
  CHECK_THAT(r.err, Catch::Contains((dir / "lib" / "gaggle" / "gaggle-torch").string()));
  CHECK_THAT(r.err, Catch::Contains("GAGGLE_TORCH_EXE"));
  for (const char* verb : {"train-gate", "assemble", "eval", "generate", "inspect MODEL_DIR", "debug route"})
    CHECK_THAT(r.err, Catch::Contains(verb));

  // The torch-free verbs do not need it.
  CHECK(run_command({"env", "-u", "GAGGLE_TORCH_EXE", copy.string(), "--version"}).exit_code == 0);
  CHECK(run_command({copy.string(), "keygen", "-f", (dir / "k").string()}).exit_code == 0);

  // An installed layout: <prefix>/bin/gaggle finds <prefix>/lib/gaggle/gaggle-torch.
  fs::create_directories(dir / "lib" / "gaggle");
  fs::create_symlink(GAGGLE_TORCH_BINARY, dir / "lib" / "gaggle" / "gaggle-torch");
  auto installed = run_command({"env", "-u", "GAGGLE_TORCH_EXE", copy.string(), "eval", "--help"});
  CHECK(installed.exit_code == 0);
  CHECK_THAT(installed.out, Catch::Contains("gaggle eval"));

  // GAGGLE_TORCH_EXE overrides the search, and a wrong one is named.
  auto wrong = run_command({"env", "GAGGLE_TORCH_EXE=" + (dir / "nowhere").string(), copy.string(), "generate"});
  CHECK(wrong.exit_code == 1);
  CHECK_THAT(wrong.err, Catch::Contains((dir / "nowhere").string() + " ($GAGGLE_TORCH_EXE)"));
  auto itself = run_command({"env", "GAGGLE_TORCH_EXE=" + copy.string(), copy.string(), "generate"});
  CHECK(itself.exit_code == 1);
  CHECK_THAT(itself.err, Catch::Contains("is this gaggle itself"));
  fs::remove(dir / "lib" / "gaggle" / "gaggle-torch");
  auto set = run_command({"env", std::string("GAGGLE_TORCH_EXE=") + GAGGLE_TORCH_BINARY, copy.string(), "assemble", "--help"});
  CHECK(set.exit_code == 0);
  CHECK_THAT(set.out, Catch::Contains("gaggle assemble"));
}

#else

TEST_CASE("without LibTorch the torch verbs say they are not built", "[cmd][front]") {
  auto r = run_gaggle({"train-expert", "--help"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("built without it"));
  CHECK_THAT(r.err, Catch::Contains("GAGGLE_WITH_TORCH"));
}

#endif
