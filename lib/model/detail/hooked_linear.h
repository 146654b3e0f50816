#pragma once
// The one linear layer every base architecture builds on (lib/model internal): y = W u
// (no bias), then the attached adapter, if any, sees (u, W u) and returns the output
// (linear_hook.h). T5 and Llama both alias it, so the hook point is one class: a new
// architecture gets adapters, LoRA and routers by building its linears from it.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>

#include "model/linear_hook.h"

namespace gaggle::model::detail {

class HookedLinearImpl : public torch::nn::Module {
 public:
  HookedLinearImpl(std::int64_t d_in, std::int64_t d_out);
  at::Tensor forward(const at::Tensor& u);
  at::Tensor weight;  // [d_out, d_in], registered as "weight"
  std::shared_ptr<LinearAdapter> adapter;
};

}  // namespace gaggle::model::detail
