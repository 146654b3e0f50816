#pragma once
// What changed between two versions of an expert, tensor by tensor (issue #16:
// `gaggle diff`). Tensors are matched by file and name; equal sha256 means unchanged
// without reading the data (the manifests' tensor indexes, bundle/tensor_index.h, or an
// index computed from the file for bundles written before it). A changed tensor of the
// same dtype and shape gets the norm of the difference and its size relative to the
// old tensor's norm; other files are compared by sha256.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gaggle::bundle {

enum class Change { unchanged, changed, added, removed };
const char* change_name(Change c);

struct TensorChange {
  std::string name;
  Change change = Change::unchanged;
  std::string dtype, old_dtype;  // the new one (old for removed)
  std::vector<std::int64_t> shape, old_shape;
  std::uint64_t bytes = 0;                // the new tensor's size (old for removed)
  std::optional<double> diff_norm;        // ||new - old||_2, same dtype and shape only
  std::optional<double> relative_change;  // diff_norm / ||old||_2 (absent when ||old|| = 0)
};

struct FileChange {
  std::string path;
  Change change = Change::unchanged;
  bool has_tensors = false;  // a safetensors file: `tensors` holds every tensor
  std::vector<TensorChange> tensors;
};

struct BundleDiff {
  std::string from, to;  // name@version
  std::vector<FileChange> files;
  int unchanged = 0, changed = 0, added = 0, removed = 0;  // tensors (and non-tensor files)
  std::uint64_t changed_bytes = 0;  // bytes of changed and added tensors and files
  std::uint64_t total_bytes = 0;    // bytes of the new version's files

  nlohmann::json to_json(bool include_unchanged) const;
};

// Compares two bundle directories (their files must match their manifests: a changed
// file is an Error{mismatch}). Reads the data of changed tensors only.
BundleDiff diff_bundles(const std::filesystem::path& from_dir, const std::filesystem::path& to_dir);

}  // namespace gaggle::bundle
