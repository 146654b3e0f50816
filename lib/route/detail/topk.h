#pragma once
// Top-k of one row of routing probabilities: the inner loop of every per-token router.
// Torch-free so that it compiles in a second and can be tested on its own.
#include <cstdint>

namespace gaggle::route::detail {

// The k largest values of row[0, n) in descending order: best_v[0..k) and their indices
// best_i[0..k). Ties go to the lower index (a later equal value never displaces an
// earlier one); NaN and -inf are never chosen. Slots left unfilled (fewer than k values
// above -inf) get index -1 and value -inf. Requires 1 <= k.
//
// With AVX2, k = 2 (the default routing) takes one pass in which each of eight lanes
// keeps its two largest values, then two searches for where the winners first lie; k up
// to 4 takes k such max-and-search passes; larger k a scan that compares eight values at
// a time against the current k-th best and inserts only the rare values that beat it.
// All give the result of a plain scan. One core, 166 values a row: about 60 ns a row
// for k = 2, against 180 for the filtered scan (whose insertions near the start of a row
// branch unpredictably).
void topk_row(const float* row, std::int64_t n, int k, float* best_v, std::int64_t* best_i);

// Gives the slots topk_row left unfilled (index -1: a row of NaN, a NaN input) the lowest
// indices not chosen yet, with their values from row, so that a NaN reaches the caller's
// output through valid indices instead of an out-of-range one. Requires k <= n.
void fill_unfilled_slots(const float* row, int k, float* best_v, std::int64_t* best_i);

}  // namespace gaggle::route::detail
