#include "route/detail/topk.h"

#include "route/detail/intrinsics.h"

#include <algorithm>
#include <limits>

#include "route/detail/cpu_features.h"

namespace gaggle::route::detail {
namespace {

// Inserts v (index j) into the descending list if it beats the k-th best. Strict
// comparisons keep the earlier index ahead of an equal later value.
inline void insert(float v, std::int64_t j, int k, float* best_v, std::int64_t* best_i) {
  if (!(v > best_v[k - 1])) return;  // also rejects NaN
  int pos = k - 1;
  while (pos > 0 && v > best_v[pos - 1]) {
    best_v[pos] = best_v[pos - 1];
    best_i[pos] = best_i[pos - 1];
    --pos;
  }
  best_v[pos] = v;
  best_i[pos] = j;
}

void scan_scalar(const float* row, std::int64_t begin, std::int64_t n, int k, float* best_v, std::int64_t* best_i) {
  for (std::int64_t j = begin; j < n; ++j) insert(row[j], j, k, best_v, best_i);
}

__attribute__((target("avx2"))) void scan_avx2(const float* row, std::int64_t n, int k, float* best_v,
                                                std::int64_t* best_i) {
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(row + j);
    // Ordered greater-than: false for NaN, like insert().
    int hits = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(best_v[k - 1]), _CMP_GT_OQ));
    while (hits) {  // in index order, so ties still go to the lower index
      const int lane = __builtin_ctz(hits);
      hits &= hits - 1;
      insert(row[j + lane], j + lane, k, best_v, best_i);
    }
  }
  scan_scalar(row, j, n, k, best_v, best_i);
}

// The first j in [begin, n) with row[j] == v (-0 and +0 equal, as in insert()), or n.
__attribute__((target("avx2"))) std::int64_t find_equal(const float* row, std::int64_t begin, std::int64_t n,
                                                         float v) {
  const __m256 v8 = _mm256_set1_ps(v);
  std::int64_t j = begin;
  for (; j + 8 <= n; j += 8) {
    const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + j), v8, _CMP_EQ_OQ));
    if (hits) return j + __builtin_ctz(hits);
  }
  for (; j < n; ++j)
    if (row[j] == v) return j;
  return n;
}

// The largest value of the row strictly below `limit` (at or below it with `inclusive`),
// NaN never; -inf where there is none.
__attribute__((target("avx2"))) float max_below(const float* row, std::int64_t n, float limit, bool inclusive) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  const __m256 limit8 = _mm256_set1_ps(limit), none = _mm256_set1_ps(minus_inf);
  __m256 best = none;
  std::int64_t j = 0;
  // Ordered comparisons are false for NaN: a NaN lane becomes -inf before the max.
  if (inclusive) {
    for (; j + 8 <= n; j += 8) {
      const __m256 v = _mm256_loadu_ps(row + j);
      best = _mm256_max_ps(best, _mm256_blendv_ps(none, v, _mm256_cmp_ps(v, limit8, _CMP_LE_OQ)));
    }
  } else {
    for (; j + 8 <= n; j += 8) {
      const __m256 v = _mm256_loadu_ps(row + j);
      best = _mm256_max_ps(best, _mm256_blendv_ps(none, v, _mm256_cmp_ps(v, limit8, _CMP_LT_OQ)));
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, best);
  float m = minus_inf;
  for (const float lane : lanes) m = lane > m ? lane : m;
  for (; j < n; ++j)
    if ((inclusive ? row[j] <= limit : row[j] < limit) && row[j] > m) m = row[j];
  return m;
}

// Top-k by k passes over the row, for small k: each pass takes the next element in the
// order (value descending, index ascending), which is a later element equal to the last
// one chosen, or else the first element holding the largest value below it. A few
// branch-free vectorised passes cost less than the filtered scan above, whose insertions
// branch unpredictably near the start of a row. On one core of the development machine,
// k = 3 over 166 values: about 160 ns a row instead of 210.
__attribute__((target("avx2"))) void passes_avx2(const float* row, std::int64_t n, int k, float* best_v,
                                                  std::int64_t* best_i) {
  for (int slot = 0; slot < k; ++slot) {
    if (slot > 0) {
      const std::int64_t tie = find_equal(row, best_i[slot - 1] + 1, n, best_v[slot - 1]);
      if (tie < n) {
        best_v[slot] = row[tie];
        best_i[slot] = tie;
        continue;
      }
    }
    const float m = slot == 0 ? max_below(row, n, std::numeric_limits<float>::infinity(), /*inclusive=*/true)
                              : max_below(row, n, best_v[slot - 1], /*inclusive=*/false);
    if (!(m > -std::numeric_limits<float>::infinity())) return;  // the rest stay unfilled
    const std::int64_t at = find_equal(row, 0, n, m);
    best_v[slot] = row[at];
    best_i[slot] = at;
  }
}

// k = 2 (PHATGOOSE's top-2) in one pass: each lane keeps its two largest values, which
// together hold the row's two largest (as a multiset), and two searches find where they
// first lie. The same result as the passes above.
__attribute__((target("avx2"))) void top2_avx2(const float* row, std::int64_t n, float* best_v,
                                                std::int64_t* best_i) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  const __m256 none = _mm256_set1_ps(minus_inf);
  __m256 first = none, second = none;
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(row + j);
    v = _mm256_blendv_ps(none, v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));  // NaN -> -inf
    second = _mm256_max_ps(second, _mm256_min_ps(first, v));
    first = _mm256_max_ps(first, v);
  }
  alignas(32) float lanes[16];
  _mm256_store_ps(lanes, first);
  _mm256_store_ps(lanes + 8, second);
  float m1 = minus_inf, m2 = minus_inf;
  auto take = [&](float v) {  // NaN fails both comparisons
    if (v > m1) m2 = m1, m1 = v;
    else if (v > m2) m2 = v;
  };
  for (const float v : lanes) take(v);
  for (; j < n; ++j) take(row[j]);
  // (take() keeps one of two equal values in m1 and the other in m2: `v > m1` is false
  // for the second, `v > m2` true unless m2 already holds it.)
  if (!(m1 > minus_inf)) return;  // no usable value: both slots stay unfilled
  best_i[0] = find_equal(row, 0, n, m1);
  best_v[0] = row[best_i[0]];
  if (!(m2 > minus_inf)) return;
  best_i[1] = m2 == m1 ? find_equal(row, best_i[0] + 1, n, m1) : find_equal(row, 0, n, m2);
  best_v[1] = row[best_i[1]];
}

// Up to this k the passes beat the filtered scan.
constexpr int kMaxPassesK = 4;

}  // namespace

void topk_row(const float* row, std::int64_t n, int k, float* best_v, std::int64_t* best_i) {
  for (int s = 0; s < k; ++s) {
    best_v[s] = -std::numeric_limits<float>::infinity();
    best_i[s] = -1;
  }
  if (cpu_has_avx2() && k == 2)
    top2_avx2(row, n, best_v, best_i);
  else if (cpu_has_avx2() && k <= kMaxPassesK)
    passes_avx2(row, n, k, best_v, best_i);
  else if (cpu_has_avx2())
    scan_avx2(row, n, k, best_v, best_i);
  else
    scan_scalar(row, 0, n, k, best_v, best_i);
}

void fill_unfilled_slots(const float* row, int k, float* best_v, std::int64_t* best_i) {
  for (int slot = 0, next = 0; slot < k; ++slot) {
    if (best_i[slot] >= 0) continue;
    while (std::find(best_i, best_i + k, next) != best_i + k) ++next;
    best_i[slot] = next;
    best_v[slot] = row[next];
  }
}

}  // namespace gaggle::route::detail
