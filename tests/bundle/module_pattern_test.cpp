// PEFT's module-name patterns (bundle/detail/module_pattern.h): Python's re.fullmatch for
// the patterns people write, and bounded work for the ones nobody should.
#include <catch2/catch.hpp>

#include <string>

#include "bundle/detail/module_pattern.h"

using gaggle::bundle::detail::full_match_module_pattern;

namespace {

bool matches(const std::string& pattern, const std::string& text) {
  auto m = full_match_module_pattern(pattern, text);
  INFO(pattern << " ~ " << text << ": " << m.error);
  REQUIRE(m.error.empty());
  return m.matched;
}

}  // namespace

TEST_CASE("module patterns match as Python's re.fullmatch", "[bundle][peft][pattern]") {
  const std::string q = "encoder.block.0.layer.0.SelfAttention.q";
  CHECK(matches(".*SelfAttention\\.(q|v)", q));
  CHECK_FALSE(matches(".*SelfAttention\\.(k|v)", q));
  CHECK(matches(R"(.*\.block\.[01]\..*\.q)", q));
  CHECK_FALSE(matches("SelfAttention", q));  // the whole path, not a search
  CHECK_FALSE(matches("encoder", q));        // nor a prefix
  CHECK(matches("(.*\\.)?(q)", q));          // rank_pattern keys, as PEFT wraps them
  CHECK_FALSE(matches("(.*\\.)?(k)", q));
  CHECK(matches("a|ab", "ab"));                 // alternatives tried against the whole text
  CHECK(matches("(?P<part>encoder)\\..*", q));  // Python's named groups
  CHECK(matches(R"(encoder\.block\.\d+\.layer\.0\.SelfAttention\.[qkv])", q));
}

TEST_CASE("a module pattern that cannot be used is an error that says why", "[bundle][peft][pattern]") {
  CHECK_THAT(full_match_module_pattern("(unclosed", "x").error, Catch::Contains("missing closing parenthesis"));
  CHECK_THAT(full_match_module_pattern(std::string(5000, 'a'), "a").error, Catch::Contains("longer than 4096"));
  // Nested repeats backtrack exponentially. The one std::regex was still matching after 20
  // seconds against a 40-character module path is answered at once (PCRE2 sees that no
  // 'X' is there); one that defeats that shortcut stops at the work limit with an error.
  const std::string q = "encoder.block.0.layer.0.SelfAttention.q";
  auto hung_before = full_match_module_pattern("(.*)*(.*)*(.*)*X", q);
  CHECK(hung_before.error.empty());
  CHECK_FALSE(hung_before.matched);
  auto nested = full_match_module_pattern("((.*)*)*z?(.*)*$q", q);
  CHECK_FALSE(nested.matched);
  CHECK_THAT(nested.error, Catch::Contains("more work than any module-name pattern needs"));
}
