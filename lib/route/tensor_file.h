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
// F16/BF16/F64 converted into a new tensor) or int64 (I64). Throws Error{not_found}
// naming file and tensor, Error{unsupported} for other dtypes. Never write to the result.
at::Tensor read_tensor(const std::shared_ptr<const io::SafetensorsFile>& file, const std::string& name);

// Adds a float32 (any float dtype is converted) or int64 tensor. Throws Error{unsupported}.
void add_tensor(io::SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor);

}  // namespace gaggle::route
