#pragma once
// One tensor a checkpoint of some architecture must hold: what the torch-free checks
// (describe_base, inspect) compare the weight headers against, for every architecture.
#include <cstdint>
#include <string>
#include <vector>

namespace gaggle::model {

struct ExpectedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
};

}  // namespace gaggle::model
