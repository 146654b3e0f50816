// Parsers of outside input never crash or throw anything but gaggle::Error: thousands of
// random mutations of valid signatures, keys, trust files and manifests.
#include <random>

#include <catch2/catch.hpp>

#include "bundle/allowed_signers.h"
#include "bundle/manifest.h"
#include "bundle/sshsig.h"
#include "fixtures.h"
#include "io/error.h"

using namespace gaggle;
using namespace gaggle::bundle;
using namespace gaggle::test;

namespace {

template <typename Parse>
int mutate_and_parse(const std::string& valid, Parse parse, int rounds, unsigned seed) {
  std::mt19937 rng(seed);
  int accepted = 0;
  for (int i = 0; i < rounds; ++i) {
    std::string s = valid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        case 2: s.insert(at, 1, static_cast<char>(rng())); break;
        default: s.resize(at); break;
      }
    }
    try {
      parse(s);
      ++accepted;
    } catch (const Error&) {
    }
  }
  return accepted;
}

}  // namespace

TEST_CASE("mutated inputs are refused with gaggle::Error, never a crash", "[bundle][robustness]") {
  PrivateKey k = generate_ed25519_key("fuzz");
  std::string sig = sign_sshsig(k.pub, [&](std::string_view d) { return local_ed25519_signer_blob(k, d); }, "m", kBundleNamespace);
  CHECK(mutate_and_parse(sig, [](const std::string& s) { verify_sshsig(parse_sshsig(s, "s"), "m", kBundleNamespace, "s"); }, 3000, 1) < 3000);
  CHECK(mutate_and_parse(format_private_key(k), [](const std::string& s) { parse_private_key(s, "k"); }, 3000, 2) < 3000);
  std::string trust = signer_line("a@example.com", k.pub, "namespaces=\"gaggle-bundle\",valid-after=\"20200101Z\"");
  mutate_and_parse(trust, [](const std::string& s) { parse_allowed_signers(s, "t"); }, 3000, 3);
  TempDir dir;
  Manifest m = make_demo_bundle(dir / "b", {});
  std::string bytes = serialize_manifest(m);
  CHECK(mutate_and_parse(bytes, [](const std::string& s) { parse_manifest(s, "manifest.json"); }, 2000, 4) < 2000);
}
