#pragma once
// Loading a module's parameters from a Hugging Face checkpoint by name, strictly, for
// any architecture (design.md "Models and modules"): every parameter must be stored with
// its shape, every stored tensor must be consumed, declared as an alias of a parameter
// (and equal to it), or declared ignorable. Stored F32/F16/BF16 become float32.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "model/hf_checkpoint.h"
#include <nlohmann/json_fwd.hpp>

#include "model/load_options.h"

namespace gaggle::model::detail {

// A stored tensor that must equal a parameter (a tied copy HF may write).
struct TensorAlias {
  std::string name;    // stored name, e.g. "lm_head.weight"
  std::string target;  // parameter name, e.g. "model.embed_tokens.weight"
  std::string hint;    // what to do when it differs
};

// Throws Error{invalid} naming the file and tensor (missing, unexpected, wrong shape,
// alias differing), Error{unsupported} (dtype).
void load_parameters_strict(torch::nn::Module& module, const HfCheckpoint& checkpoint,
                            const std::vector<TensorAlias>& aliases,
                            const std::function<bool(const std::string&)>& ignorable);

// The inverse for any architecture: DIR/config.json (`config`, its torch_dtype set to
// match) and DIR/model.safetensors holding every parameter by name as `dtype` (F32, or
// BF16/F16 rounded to nearest even), each file written atomically. Throws Error{io},
// Error{usage} for another dtype.
void save_parameters(const torch::nn::Module& module, const nlohmann::json& config, const std::filesystem::path& dir,
                     io::DType dtype = io::DType::F32);

// eval(), the device move (Error{unsupported} with a hint when impossible) and, unless
// options.trainable, requires_grad false on every parameter.
void finish_load(torch::nn::Module& module, const LoadOptions& options);

}  // namespace gaggle::model::detail
