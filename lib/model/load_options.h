#pragma once
// How a base model is loaded, whatever its architecture (load_t5, load_llama).
#include <string>

namespace gaggle::model {

struct LoadOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N" (weights are moved there)
  bool trainable = false;      // true: base parameters keep requires_grad (pretraining)
};

}  // namespace gaggle::model
