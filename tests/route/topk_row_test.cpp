// The top-k row scan (route/detail/topk.h) against a plain scan: the vectorised filter
// must choose the same indices in the same order, ties to the lower index, NaN never.
#include "route/detail/topk.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

void plain_topk(const std::vector<float>& row, int k, std::vector<float>& v, std::vector<std::int64_t>& idx) {
  v.assign(k, -std::numeric_limits<float>::infinity());
  idx.assign(k, -1);
  for (std::size_t j = 0; j < row.size(); ++j) {
    for (int s = 0; s < k; ++s) {
      if (row[j] > v[s]) {
        for (int q = k - 1; q > s; --q) v[q] = v[q - 1], idx[q] = idx[q - 1];
        v[s] = row[j];
        idx[s] = static_cast<std::int64_t>(j);
        break;
      }
    }
  }
}

}  // namespace

TEST_CASE("topk_row equals a plain scan on random rows with ties and NaN", "[route][topk]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coarse(0, 5);  // few distinct values: many ties
  std::normal_distribution<float> normal;
  for (int trial = 0; trial < 6000; ++trial) {
    // Short rows (the scalar tails), then rows of up to 300 (k = 2 and small k take their
    // own vectorised paths); k up to 6 (the filtered scan).
    const std::int64_t n = trial < 3000 ? 1 + trial % 53 : 1 + (trial * 7) % 300;
    const int k = 1 + trial % (trial < 3000 ? 4 : 6);
    std::vector<float> row(n);
    for (auto& x : row) x = trial % 3 == 0 ? static_cast<float>(coarse(rng)) : normal(rng);
    if (trial % 7 == 0) row[trial % n] = std::nanf("");
    if (trial % 11 == 0) row[(trial / 3) % n] = -std::numeric_limits<float>::infinity();
    if (trial % 13 == 0) row[(trial / 5) % n] = std::numeric_limits<float>::infinity();
    if (trial % 17 == 0) row[(trial / 7) % n] = std::numeric_limits<float>::infinity();  // maybe two
    if (trial % 5 == 0)  // signed zeros tie with each other
      for (std::int64_t j = trial % 3; j < n; j += 4) row[j] = j % 8 ? 0.0f : -0.0f;
    std::vector<float> want_v, got_v(k);
    std::vector<std::int64_t> want_i, got_i(k);
    plain_topk(row, k, want_v, want_i);
    gaggle::route::detail::topk_row(row.data(), n, k, got_v.data(), got_i.data());
    INFO("trial " << trial << " n " << n << " k " << k);
    CHECK(got_i == want_i);
    for (int s = 0; s < k; ++s)
      if (want_i[s] >= 0) CHECK(got_v[s] == want_v[s]);
  }
}

TEST_CASE("topk_row leaves slots unfilled when a row has fewer than k usable values", "[route][topk]") {
  const float nan = std::nanf("");
  std::vector<float> row = {nan, 0.5f, nan, nan, nan, nan, nan, nan, nan, nan};
  float v[3];
  std::int64_t i[3];
  gaggle::route::detail::topk_row(row.data(), static_cast<std::int64_t>(row.size()), 3, v, i);
  CHECK(i[0] == 1);
  CHECK(v[0] == 0.5f);
  CHECK(i[1] == -1);
  CHECK(i[2] == -1);
}
