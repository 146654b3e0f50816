#pragma once
// The one hook point of a base model's linear layers (issue #3, item 5).
//
// Every linear layer of a base model is addressable by its Hugging Face module path
// (e.g. "encoder.block.3.layer.1.DenseReluDense.wi_0"). A LinearAdapter attached to
// that path sees the layer's input u and the frozen output W u and returns the
// layer's output. LoRA experts (peft), gated experts (train-gate) and routers (route)
// are all adapters: experts are data keyed by module path, never subclasses of the model.
#include <ATen/core/Tensor.h>

namespace gaggle::model {

class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // u: [..., d_in]; base_out: W u, [..., d_out]. Returns the output, [..., d_out]
  // (typically base_out + a low-rank update).
  virtual at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) = 0;
};

}  // namespace gaggle::model
