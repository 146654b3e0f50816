#pragma once
// Sparse, bit-exact deltas between two versions of a tensor (issue #16). A new version
// of an expert whose tensor differs from the previous version's in few elements can
// travel as "<sha256>.delta" — the elements that changed and their new bytes — instead
// of the whole tensor. The delta names its base tensor by sha256; a reader rebuilds the
// tensor from the base and checks the result against the signed sha256, so a delta
// cannot change what was signed, only how it travels.
//
// Format (little-endian):
//   "GGLDELT1"                     8 bytes
//   base sha256                    64 lowercase hex characters
//   element size                   u32: 1, 2, 4 or 8 bytes
//   tensor size                    u64: bytes of base and result alike
//   count                          u64: elements that differ
//   indices                        count × u32, strictly increasing
//   values                         count × element size: the new elements' bytes
//
// Low-rank deltas are not offered: a product of float factors does not rebuild the signed
// bytes exactly.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace gaggle::bundle {

inline constexpr std::string_view kDeltaSuffix = ".delta";  // F.parts/<sha256>.delta

// The delta that turns `base` into `target` (equal sizes, a multiple of elem_size), or
// nothing when it would take more than `max_bytes` (then the whole tensor is cheaper).
std::optional<std::string> encode_sparse_delta(std::string_view base, const std::string& base_sha256, std::string_view target,
                                               std::size_t elem_size, std::size_t max_bytes);

// The tensor a delta applies to. Throws Error{invalid} naming `where`.
struct DeltaBase {
  std::string sha256;
  std::uint64_t size = 0;
};
DeltaBase sparse_delta_base(std::string_view delta, const std::string& where);

// How many deltas a reader follows to reach a whole tensor before it gives up.
inline constexpr int kMaxDeltaChain = 16;

// Part `name` of a file kept as parts (tensor_index.h), wherever the parts are stored,
// following a delta: `read_stored(n)` gives the bytes stored under part name n (the
// part, or "<name>.delta") or nothing; `find_base(base, depth)` the base tensor's bytes
// from elsewhere (another version of the expert; it follows deltas itself at `depth`), or
// nothing. Nothing when neither the part nor its delta is stored. `where` names the file
// in errors: Error{not_found} when the base is nowhere, Error{invalid} past
// kMaxDeltaChain deltas or for a malformed delta, Error{mismatch} for a wrong base.
std::optional<std::string> read_part_following_delta(
    const std::string& name, int depth, const std::string& where,
    const std::function<std::optional<std::string>(const std::string&)>& read_stored,
    const std::function<std::optional<std::string>(const DeltaBase&, int)>& find_base);

// Rebuilds the target. The base must have the delta's size and base sha256; the caller
// checks the result against the signed hash. Throws Error{invalid|mismatch} naming `where`.
std::string apply_sparse_delta(std::string_view delta, std::string_view base, const std::string& where);

}  // namespace gaggle::bundle
