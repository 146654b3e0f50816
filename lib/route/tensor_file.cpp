#include "route/tensor_file.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>

#include "io/error.h"

namespace gaggle::route {

at::Tensor read_tensor(const std::shared_ptr<const io::SafetensorsFile>& file, const std::string& name,
                       bool keep_bf16) {
  const io::TensorInfo& info = file->at(name);
  auto bytes = file->data(info);
  std::vector<std::int64_t> shape(info.shape.begin(), info.shape.end());
  const void* ptr = bytes.data();
  const bool as_stored = info.dtype == io::DType::F32 || info.dtype == io::DType::I64 ||
                         (keep_bf16 && info.dtype == io::DType::BF16);
  if (as_stored) {
    const auto type = info.dtype == io::DType::F32   ? at::kFloat
                      : info.dtype == io::DType::I64 ? at::kLong
                                                     : at::kBFloat16;
    const std::size_t align = io::dtype_size(info.dtype);
    if (reinterpret_cast<std::uintptr_t>(ptr) % align == 0 && info.numel() > 0) {
      auto keep = file;  // the tensor holds the mapping alive
      return at::from_blob(const_cast<void*>(ptr), shape, [keep](void*) {}, at::TensorOptions().dtype(type));
    }
    auto out = at::empty(shape, at::TensorOptions().dtype(type));
    if (!bytes.empty()) std::memcpy(out.data_ptr(), ptr, bytes.size());
    return out;
  }
  if (info.dtype == io::DType::F16 || info.dtype == io::DType::BF16 || info.dtype == io::DType::F64) {
    auto out = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
    io::convert_to_f32(info.dtype, bytes, out.data_ptr<float>(), static_cast<std::size_t>(info.numel()));
    return out;
  }
  throw_error(ErrorCode::unsupported, "route",
              file->path().string() + ": tensor '" + name + "' has dtype " + std::string(io::dtype_name(info.dtype)) +
                  ", expected a float or I64 tensor");
}

void add_tensor(io::SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor, io::DType store) {
  std::vector<std::int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  if (tensor.scalar_type() == at::kLong) {
    auto t = tensor.cpu().contiguous();
    writer.add(name, io::DType::I64, shape,
               std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data_ptr()), t.numel() * 8));
    return;
  }
  if (!at::isFloatingType(tensor.scalar_type()))
    throw_error(ErrorCode::unsupported, "route", "tensor '" + name + "': only float and int64 tensors are written");
  auto t = tensor.detach().to(at::kFloat).cpu().contiguous();
  writer.add_floats_as(name, store, shape,
                       std::span<const float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
}

}  // namespace gaggle::route
