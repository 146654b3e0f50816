// The AVX-512 score kernel (route/detail/packed_keys.h) against dot products written out
// in double precision, for every panel and token-tile remainder.
#include "route/detail/packed_keys.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

using namespace gaggle;

TEST_CASE("packed keys give u · key for every token and key, and leave the row's other columns alone",
          "[route][packed_keys]") {
  if (!route::detail::packed_keys_supported()) {
    WARN("no AVX-512 on this CPU: the routed layer scores its keys with the BLAS here");
    return;
  }
  // Keys: under one panel, one exactly, one and a bit, 166; widths not multiples of 16.
  const std::int64_t n = GENERATE(1, 5, 16, 31, 32, 33, 166);
  const std::int64_t d = GENERATE(3, 24, 64);
  std::mt19937 gen(static_cast<unsigned>(n * 100 + d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(n * d);
  for (auto& x : keys) x = normal(gen);
  const route::detail::PackedKeys packed(keys.data(), n, d);
  CHECK(packed.keys() == n);
  CHECK(packed.width() == d);
  // 1-9 tokens: every tile remainder and one whole tile; 130: past a block of 128.
  for (const std::int64_t rows : {1, 2, 7, 8, 9, 130}) {
    std::vector<float> u(rows * d);
    for (auto& x : u) x = normal(gen);
    const std::int64_t ld = n + 3;  // three columns the kernel must not write
    std::vector<float> raw(rows * ld, 42.0f);
    packed.scores(u.data(), rows, raw.data(), ld);
    double worst = 0;
    for (std::int64_t t = 0; t < rows; ++t) {
      for (std::int64_t e = 0; e < n; ++e) {
        double want = 0;
        for (std::int64_t j = 0; j < d; ++j) want += static_cast<double>(u[t * d + j]) * keys[e * d + j];
        worst = std::max(worst, std::abs(want - raw[t * ld + e]) / (1.0 + std::abs(want)));
      }
      for (std::int64_t e = n; e < ld; ++e) REQUIRE(raw[t * ld + e] == 42.0f);
    }
    INFO("n " << n << ", d " << d << ", rows " << rows);
    CHECK(worst < 1e-5);
  }
}
