#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "train/data_order.h"
#include "train/schedule.h"

using namespace gaggle::train;

TEST_CASE("warm-up then constant: 6% linear warm-up, then the peak rate", "[train][schedule]") {
  WarmupConstant s{5e-3, 1000, 0.06};
  CHECK(s.warmup_steps() == 60);
  CHECK(s.lr_at(0) == Approx(5e-3 / 60));
  CHECK(s.lr_at(29) == Approx(5e-3 * 30 / 60));
  CHECK(s.lr_at(59) == Approx(5e-3));
  CHECK(s.lr_at(60) == Approx(5e-3));
  CHECK(s.lr_at(999) == Approx(5e-3));
  WarmupConstant none{1e-3, 10, 0.0};
  CHECK(none.lr_at(0) == Approx(1e-3));
}

TEST_CASE("data order: each epoch is a seeded permutation, and seek reproduces it", "[train][data_order]") {
  DataOrder a(10, 42), b(10, 42), c(10, 43);
  auto first = a.next(10);
  CHECK(std::set<int64_t>(first.begin(), first.end()).size() == 10);
  CHECK(first == b.next(10));
  CHECK(first != c.next(10));
  auto second = a.next(7);  // crosses into epoch 1
  CHECK(a.epoch() == 1);
  CHECK(a.position() == 7);
  auto next = a.next(5);  // 3 from epoch 1, 2 from epoch 2
  DataOrder resumed(10, 42);
  resumed.seek(1, 7);
  CHECK(resumed.next(5) == next);
  CHECK(DataOrder::permutation(10, 42, 1) != DataOrder::permutation(10, 42, 0));
  CHECK_THROWS(resumed.seek(0, 11));
}
