#include <catch2/catch.hpp>

#include "bundle/allowed_signers.h"
#include "fixtures.h"
#include "io/error.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;

TEST_CASE("allowed-signers lines with options parse", "[bundle][allowed_signers]") {
  PrivateKey a = generate_ed25519_key("a"), b = generate_ed25519_key("b");
  std::string text = "# trust file\n\n" + signer_line("alice@example.com,alice@work", a.pub) +
                     signer_line("\"bob@example.com\"", b.pub,
                                 "namespaces=\"gaggle-bundle,git\",valid-after=\"20260101Z\",valid-before=\"202701011200Z\"") +
                     signer_line("*@ca.example.com", b.pub, "cert-authority");
  auto signers = parse_allowed_signers(text, "allowed");
  REQUIRE(signers.size() == 3);
  CHECK(signers[0].principals == std::vector<std::string>{"alice@example.com", "alice@work"});
  CHECK(signers[0].line == 3);
  CHECK(signers[0].namespaces.empty());
  CHECK(signers[1].principals == std::vector<std::string>{"bob@example.com"});
  CHECK(signers[1].namespaces == std::vector<std::string>{"gaggle-bundle", "git"});
  CHECK(signers[1].valid_after == 1767225600);   // 2026-01-01T00:00:00Z
  CHECK(signers[1].valid_before == 1798804800);  // 2027-01-01T12:00:00Z
  CHECK(signers[2].cert_authority);
}

TEST_CASE("times and patterns follow OpenSSH", "[bundle][allowed_signers]") {
  CHECK(parse_signer_time("19700101Z") == 0);
  CHECK(parse_signer_time("19700101000001Z") == 1);
  CHECK_FALSE(parse_signer_time("2026"));
  CHECK_FALSE(parse_signer_time("20261301Z"));
  CHECK(match_pattern_list("gaggle-bundle", {"gaggle-*"}));
  CHECK(match_pattern_list("gaggle-bundle", {"git", "gaggle-bundl?"}));
  CHECK_FALSE(match_pattern_list("gaggle-bundle", {"git"}));
  CHECK_FALSE(match_pattern_list("gaggle-bundle", {"*", "!gaggle-*"}));
}

TEST_CASE("trust decisions name their reason", "[bundle][allowed_signers]") {
  PrivateKey a = generate_ed25519_key("a"), b = generate_ed25519_key("b"), c = generate_ed25519_key("c");
  std::string text = signer_line("alice@example.com", a.pub, "namespaces=\"git\"") +
                     signer_line("bob@example.com", b.pub, "valid-after=\"20260101Z\",valid-before=\"20270101Z\"") +
                     signer_line("carol@example.com", c.pub, "cert-authority");
  auto signers = parse_allowed_signers(text, "trust");
  const std::int64_t in_2026 = 1780000000, in_2025 = 1750000000, in_2028 = 1830000000;
  CHECK(find_trusted_signer(signers, b.pub, "gaggle-bundle", in_2026, "trust").principal_text() == "bob@example.com");
  CHECK_THROWS_WITH(find_trusted_signer(signers, a.pub, "gaggle-bundle", in_2026, "trust"),
                    Catch::Contains("trust:1") && Catch::Contains("namespace 'gaggle-bundle'"));
  CHECK_THROWS_WITH(find_trusted_signer(signers, b.pub, "gaggle-bundle", in_2025, "trust"), Catch::Contains("not valid before 2026-01-01"));
  CHECK_THROWS_WITH(find_trusted_signer(signers, b.pub, "gaggle-bundle", in_2028, "trust"), Catch::Contains("expired at 2027-01-01"));
  CHECK_THROWS_WITH(find_trusted_signer(signers, c.pub, "gaggle-bundle", in_2026, "trust"), Catch::Contains("cert-authority"));
  CHECK(find_trusted_signer(signers, b.pub, "gaggle-bundle", in_2026, "trust", "bob@example.com").line == 2);
  CHECK_THROWS_WITH(find_trusted_signer(signers, b.pub, "gaggle-bundle", in_2026, "trust", "alice@example.com"),
                    Catch::Contains("not 'alice@example.com'"));
  PrivateKey d = generate_ed25519_key("d");
  try {
    find_trusted_signer(signers, d.pub, "gaggle-bundle", in_2026, "trust");
    FAIL("an unknown key was trusted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::auth);
    CHECK_THAT(e.what(), Catch::Contains(d.pub.fingerprint()) && Catch::Contains("not trusted"));
  }
}

TEST_CASE("malformed trust files are refused by line", "[bundle][allowed_signers]") {
  PrivateKey a = generate_ed25519_key("a");
  CHECK_THROWS_WITH(parse_allowed_signers("alice\n", "t"), Catch::Contains("t:1"));
  CHECK_THROWS_WITH(parse_allowed_signers("\n" + signer_line("alice", a.pub, "valid-after=\"soon\""), "t"),
                    Catch::Contains("t:2") && Catch::Contains("not a time"));
  CHECK_THROWS_WITH(parse_allowed_signers(signer_line("alice", a.pub, "frobnicate"), "t"), Catch::Contains("unknown option"));
  CHECK_THROWS_WITH(parse_allowed_signers("alice namespaces=\"x ssh-ed25519 AAAA\n", "t"), Catch::Contains("unbalanced quote"));
}
