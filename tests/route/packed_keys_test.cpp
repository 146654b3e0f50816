// The score kernels (route/detail/packed_keys.h, 512- and 256-bit) against dot products
// written out in double precision, for every panel and token-tile remainder.
#include "route/detail/packed_keys.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

using namespace gaggle;

TEST_CASE("packed keys give u · key for every token and key, and leave the row's other columns alone",
          "[route][packed_keys]") {
  using route::detail::ScoreKernel;
  const ScoreKernel kernel = GENERATE(ScoreKernel::avx2, ScoreKernel::avx512);
  if (!route::detail::score_kernel_runs(kernel)) {
    WARN("this CPU lacks the " << (kernel == ScoreKernel::avx512 ? "AVX-512" : "AVX2/FMA") << " score kernel: not tested here");
    return;
  }
  // Keys: under one register, one register (8) and a bit, one panel (16 or 32) exactly
  // and a bit, 166; widths not multiples of 16.
  const std::int64_t n = GENERATE(1, 5, 8, 9, 16, 24, 31, 32, 33, 166);
  const std::int64_t d = GENERATE(3, 24, 64);
  std::mt19937 gen(static_cast<unsigned>(n * 100 + d));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(n * d);
  for (auto& x : keys) x = normal(gen);
  const route::detail::PackedKeys packed(keys.data(), n, d, kernel);
  CHECK(packed.kernel() == kernel);
  CHECK(packed.keys() == n);
  CHECK(packed.width() == d);
  // 1-9 tokens: tile remainders and whole tiles of both kernels (6 and 8 tokens); 130:
  // past a block of 128.
  for (const std::int64_t rows : {1, 2, 5, 6, 7, 8, 9, 130}) {
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
    INFO((kernel == ScoreKernel::avx512 ? "avx512" : "avx2") << ", n " << n << ", d " << d << ", rows " << rows);
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("packed keys score rows wherever they lie and write each row's products where it is told",
          "[route][packed_keys]") {
  using route::detail::ScoreKernel;
  const ScoreKernel kernel = GENERATE(ScoreKernel::avx2, ScoreKernel::avx512);
  if (!route::detail::score_kernel_runs(kernel)) return;
  const std::int64_t n = GENERATE(7, 40), d = 24, tokens = 20;
  std::mt19937 gen(static_cast<unsigned>(n));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(n * d), u(tokens * d);
  for (auto& x : keys) x = normal(gen);
  for (auto& x : u) x = normal(gen);
  const route::detail::PackedKeys packed(keys.data(), n, d, kernel);
  // Every third token, last first (as an ivf cluster's tokens are scattered through the
  // batch), each written at its own offset of a wide score row.
  const std::int64_t width = 3 * n;
  std::vector<float> scores(tokens * width, 42.0f);
  std::vector<const float*> rows;
  std::vector<float*> out;
  std::vector<std::int64_t> picked;
  for (std::int64_t t = tokens - 1; t >= 0; t -= 3) {
    picked.push_back(t);
    rows.push_back(u.data() + t * d);
    out.push_back(scores.data() + t * width + t % 3 * n);
  }
  packed.scores(rows.data(), static_cast<std::int64_t>(rows.size()), out.data());
  for (std::int64_t t = 0; t < tokens; ++t) {
    const bool scored = (tokens - 1 - t) % 3 == 0;
    for (std::int64_t c = 0; c < width; ++c) {
      const std::int64_t e = c - t % 3 * n;
      INFO("token " << t << ", column " << c);
      if (!scored || e < 0 || e >= n) {
        REQUIRE(scores[t * width + c] == 42.0f);
        continue;
      }
      double want = 0;
      for (std::int64_t j = 0; j < d; ++j) want += static_cast<double>(u[t * d + j]) * keys[e * d + j];
      REQUIRE(std::abs(want - scores[t * width + c]) < 1e-4 * (1.0 + std::abs(want)));
    }
  }
}
