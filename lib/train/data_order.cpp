#include "train/data_order.h"

#include <utility>

#include "io/error.h"

namespace gaggle::train {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

DataOrder::DataOrder(int64_t examples, uint64_t seed) : examples_(examples), seed_(seed) {
  if (examples <= 0) throw_error(ErrorCode::invalid, "train", "no training examples");
  order_ = permutation(examples_, seed_, 0);
}

std::vector<int64_t> DataOrder::permutation(int64_t examples, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(examples));
  for (int64_t i = 0; i < examples; ++i) p[static_cast<size_t>(i)] = i;
  uint64_t state = seed * 0x100000001B3ull + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = examples - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

std::vector<int64_t> DataOrder::next(int64_t n) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(n));
  while (static_cast<int64_t>(out.size()) < n) {
    if (position_ >= examples_) {
      ++epoch_;
      position_ = 0;
      order_ = permutation(examples_, seed_, epoch_);
    }
    out.push_back(order_[static_cast<size_t>(position_++)]);
  }
  return out;
}

void DataOrder::seek(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > examples_)
    throw_error(ErrorCode::invalid, "train", "checkpoint data position out of range",
                "the training data changed since the checkpoint; start again without --resume");
  epoch_ = epoch;
  position_ = position;
  order_ = permutation(examples_, seed_, epoch_);
}

}  // namespace gaggle::train
