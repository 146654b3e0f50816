#include "route/detail/topk.h"

#include <immintrin.h>

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

}  // namespace

void topk_row(const float* row, std::int64_t n, int k, float* best_v, std::int64_t* best_i) {
  for (int s = 0; s < k; ++s) {
    best_v[s] = -std::numeric_limits<float>::infinity();
    best_i[s] = -1;
  }
  if (cpu_has_avx2())
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
