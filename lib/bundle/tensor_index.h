#pragma once
// Per-tensor content addressing of a bundle's safetensors files (issue #16, Git-Theta's
// idea): the manifest lists, for each such file, its header and every tensor with dtype,
// shape, byte range and sha256, so the signature covers each tensor on its own.
//
// That lets a file travel as its parts — "F.parts/header" and "F.parts/<sha256>" per
// distinct tensor — instead of whole: a hub keeps each distinct tensor once (git stores
// equal bytes as one object), so a new version that changes only the gates sends and
// stores only the gates, the header and the manifest. A reader joins the parts back into
// the exact file, checking every part against its signed hash before it is used.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gaggle::bundle {

inline constexpr std::string_view kPartsSuffix = ".parts";  // F.parts/header, F.parts/<sha256>
inline constexpr std::string_view kHeaderPart = "header";

struct TensorEntry {
  std::string name;
  std::string dtype;  // safetensors spelling
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;  // from the start of the data area
  std::uint64_t size = 0;
  std::string sha256;
};

struct TensorIndex {
  std::uint64_t header_size = 0;  // the 8-byte length and the JSON header
  std::string header_sha256;
  std::vector<TensorEntry> tensors;  // in data order
};

// Indexes a safetensors image (validated as io::SafetensorsHeader::parse does).
TensorIndex index_safetensors(std::span<const std::byte> image, const std::string& source);

// JSON form inside a manifest's file entry ("safetensors": {...}); from_json throws
// Error{invalid} naming `where` for a malformed index.
nlohmann::json tensor_index_to_json(const TensorIndex& index);
TensorIndex tensor_index_from_json(const nlohmann::json& j, const std::string& where);

// The index must describe `image` exactly (the manifest must not lie about a file whose
// whole sha256 it also gives). Throws Error{mismatch} naming the tensor.
void check_tensor_index(const TensorIndex& index, std::span<const std::byte> image, const std::string& where);

// Where each part of a file sits: the header, then one part per distinct tensor sha256,
// in file order. `name` is the part's name under "<path>.parts/" ("header" or the sha256).
struct PartSpan {
  std::string name, sha256;
  std::uint64_t offset = 0, size = 0;  // from the start of the file
};
std::vector<PartSpan> part_spans(const TensorIndex& index);

// The parts of a file: relative names under "<path>.parts/" and their bytes (one part per
// distinct tensor sha256).
struct FilePart {
  std::string name;  // "header" or a tensor's sha256
  std::string_view bytes;
};
std::vector<FilePart> split_parts(const TensorIndex& index, std::string_view image);

// Joins the parts back: `read_part(name)` returns a part's bytes, or nullopt when absent.
// Every part is checked against the index (size, sha256) before use, and the result
// against the file's size and sha256. Throws Error{not_found|mismatch} naming the part.
std::string join_parts(const TensorIndex& index, std::uint64_t file_size, const std::string& file_sha256,
                       const std::function<std::optional<std::string>(const std::string&)>& read_part,
                       const std::string& where);

}  // namespace gaggle::bundle
