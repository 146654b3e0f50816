#pragma once
// at::Tensor <-> safetensors for the route room: reading shares the file's memory mapping
// (zero copy, read-only) where the dtype and alignment allow; writing goes through
// io::SafetensorsWriter (atomic).
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "io/safetensors.h"

namespace gaggle::route {

// The named tensor as float32 (F32 shared with the mapping, which the tensor keeps alive;
// F16/BF16/F64 converted into a new tensor) or int64 (I64). With keep_bf16, a BF16 tensor
// stays bfloat16, shared with the mapping too. Throws Error{not_found} naming file and
// tensor, Error{unsupported} for other dtypes. Never write to the result.
at::Tensor read_tensor(const std::shared_ptr<const io::SafetensorsFile>& file, const std::string& name,
                       bool keep_bf16 = false);

// Adds a float32 (any float dtype is converted) or int64 tensor; a float tensor is stored
// as `store` (F32, F16 or BF16: rounded to nearest even). Throws Error{unsupported}.
void add_tensor(io::SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor,
                io::DType store = io::DType::F32);

}  // namespace gaggle::route
