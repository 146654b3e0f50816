// The command-line contract: exit codes, --help on every verb, errors on stderr once.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using gaggle::test::run_gaggle;

namespace {
const char* kVerbs[] = {"train-expert", "train-gate", "publish", "pull", "assemble", "eval",     "keygen",
                        "sign",         "verify",     "inspect", "hub",  "pool",     "generate", "debug"};
}

TEST_CASE("gaggle --version and --help", "[cmd][cli]") {
  auto v = run_gaggle({"--version"});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::StartsWith("gaggle "));
  auto h = run_gaggle({"--help"});
  CHECK(h.exit_code == 0);
  for (const char* verb : kVerbs) CHECK_THAT(h.out, Catch::Contains(verb));
}

TEST_CASE("every verb answers --help with a worked example", "[cmd][cli]") {
  for (const char* verb : kVerbs) {
    INFO(verb);
    auto r = run_gaggle({verb, "--help"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Example:"));
    CHECK_THAT(r.out, Catch::Contains(std::string("gaggle ") + verb));
  }
}

TEST_CASE("usage errors exit 2 with one error line and a hint", "[cmd][cli]") {
  auto r = run_gaggle({"no-such-verb"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("gaggle: error: "));
  CHECK_THAT(r.err, Catch::Contains("hint: "));
  CHECK(r.out.empty());

  auto missing = run_gaggle({"inspect"});
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.err, Catch::Contains("gaggle inspect --help"));

  auto none = run_gaggle({});
  CHECK(none.exit_code == 2);
}
