// Regular expressions over outside text (io/pattern.h): Python's re.fullmatch and JSON
// Schema's search for the patterns gaggle meets, and bounded work and stack for the rest.
#include <catch2/catch.hpp>

#include <string>

#include "io/pattern.h"

using gaggle::io::Pattern;

namespace {

bool full(const std::string& pattern, const std::string& text) {
  auto m = Pattern(pattern, Pattern::Anchor::full).match(text);
  INFO(pattern << " ~ " << text << ": " << m.error);
  REQUIRE(m.error.empty());
  return m.matched;
}

bool search(const std::string& pattern, const std::string& text) {
  auto m = Pattern(pattern, Pattern::Anchor::search).match(text);
  INFO(pattern << " ~ " << text << ": " << m.error);
  REQUIRE(m.error.empty());
  return m.matched;
}

}  // namespace

TEST_CASE("a full pattern matches as Python's re.fullmatch (PEFT module patterns)", "[io][pattern]") {
  const std::string q = "encoder.block.0.layer.0.SelfAttention.q";
  CHECK(full(".*SelfAttention\\.(q|v)", q));
  CHECK_FALSE(full(".*SelfAttention\\.(k|v)", q));
  CHECK(full(R"(.*\.block\.[01]\..*\.q)", q));
  CHECK_FALSE(full("SelfAttention", q));  // the whole path, not a search
  CHECK_FALSE(full("encoder", q));        // nor a prefix
  CHECK(full("(.*\\.)?(q)", q));          // rank_pattern keys, as PEFT wraps them
  CHECK_FALSE(full("(.*\\.)?(k)", q));
  CHECK(full("a|ab", "ab"));                 // alternatives tried against the whole text
  CHECK(full("(?P<part>encoder)\\..*", q));  // Python's named groups
  CHECK(full(R"(encoder\.block\.\d+\.layer\.0\.SelfAttention\.[qkv])", q));
}

TEST_CASE("a search pattern matches anywhere, as JSON Schema's pattern", "[io][pattern]") {
  CHECK(search("^sha256:[0-9a-f]{64}$", "sha256:" + std::string(64, 'a')));
  CHECK_FALSE(search("^sha256:[0-9a-f]{64}$", "sha256:" + std::string(63, 'a')));
  CHECK(search("[0-9]", "abc1"));
  CHECK_FALSE(search("^https?://[^\\s]+$", "https://a b"));
  // A 1 MB URL, as a manifest may hold: libstdc++'s std::regex recursed once per character
  // here and overflowed the stack (a manifest with a 300 KB URL crashed `gaggle inspect`).
  CHECK(search("^https?://[^\\s]+$", "https://x/" + std::string(1 << 20, 'a')));
}

TEST_CASE("a pattern that cannot be used is an error that says why", "[io][pattern]") {
  CHECK_THAT(Pattern("(unclosed", Pattern::Anchor::full).error(), Catch::Contains("missing closing parenthesis"));
  CHECK_THAT(Pattern("(unclosed", Pattern::Anchor::full).match("x").error, Catch::Contains("missing closing"));
  CHECK_THAT(Pattern(std::string(5000, 'a'), Pattern::Anchor::full).error(), Catch::Contains("longer than 4096"));
  // Nested repeats backtrack exponentially. The one std::regex was still matching after 20
  // seconds against a 40-character module path is answered at once (PCRE2 sees that no
  // 'X' is there); one that defeats that shortcut stops at the work limit with an error.
  const std::string q = "encoder.block.0.layer.0.SelfAttention.q";
  auto hung_before = Pattern("(.*)*(.*)*(.*)*X", Pattern::Anchor::full).match(q);
  CHECK(hung_before.error.empty());
  CHECK_FALSE(hung_before.matched);
  auto nested = Pattern("((.*)*)*z?(.*)*$q", Pattern::Anchor::full).match(q);
  CHECK_FALSE(nested.matched);
  CHECK_THAT(nested.error, Catch::Contains("more work than any sensible pattern needs"));
}
