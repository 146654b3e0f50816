#pragma once
// A deterministic stream of example indices: epoch e visits every example once, in a
// permutation that depends only on (seed, e). Its whole state is (epoch, position), so
// a checkpoint stores two integers and a resumed run sees exactly the same batches.
#include <cstdint>
#include <vector>

namespace gaggle::train {

class DataOrder {
 public:
  DataOrder(int64_t examples, uint64_t seed);

  // The next `n` indices, crossing into the next epoch when one runs out.
  std::vector<int64_t> next(int64_t n);

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }
  // Jump to a saved place (from a checkpoint).
  void seek(int64_t epoch, int64_t position);

  // The permutation of epoch `e` (Fisher-Yates over a splitmix64 stream: the same on
  // every platform and standard library).
  static std::vector<int64_t> permutation(int64_t examples, uint64_t seed, int64_t epoch);

 private:
  int64_t examples_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace gaggle::train
