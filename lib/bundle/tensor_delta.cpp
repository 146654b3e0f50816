#include "bundle/tensor_delta.h"

#include <cstring>
#include <limits>

#include "bundle/detail/room.h"
#include "bundle/tensor_index.h"
#include "io/error.h"
#include "io/sha256.h"

namespace gaggle::bundle {
namespace {

constexpr std::string_view kDeltaMagic = "GGLDELT1";
constexpr std::size_t kShaHex = 64;
constexpr std::size_t kFixed = 8 + kShaHex + 4 + 8 + 8;

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  out.append(b, sizeof(T));
}

template <typename T>
T get(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return static_cast<T>(v);
}

bool valid_elem_size(std::uint64_t s) { return s == 1 || s == 2 || s == 4 || s == 8; }

struct Parsed {
  std::string base_sha256;
  std::uint32_t elem_size = 0;
  std::uint64_t size = 0, count = 0;
};

Parsed parse(std::string_view delta, const std::string& where) {
  auto bad = [&](const std::string& why) { throw_error(ErrorCode::invalid, kRoom, where + ": not a valid tensor delta: " + why); };
  if (delta.size() < kFixed || delta.substr(0, kDeltaMagic.size()) != kDeltaMagic) bad("no GGLDELT1 header");
  Parsed p;
  p.base_sha256 = std::string(delta.substr(8, kShaHex));
  for (char c : p.base_sha256)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) bad("the base sha256 is not lowercase hex");
  p.elem_size = get<std::uint32_t>(delta, 8 + kShaHex);
  p.size = get<std::uint64_t>(delta, 8 + kShaHex + 4);
  p.count = get<std::uint64_t>(delta, 8 + kShaHex + 12);
  if (!valid_elem_size(p.elem_size)) bad("element size " + std::to_string(p.elem_size));
  if (p.size % p.elem_size) bad("tensor size is not a multiple of the element size");
  const std::uint64_t elems = p.size / p.elem_size;
  if (p.count > elems) bad("more changed elements than the tensor has");
  if (delta.size() - kFixed != p.count * (4 + p.elem_size)) bad("its length does not match its element count");
  std::uint64_t previous = 0;
  for (std::uint64_t i = 0; i < p.count; ++i) {
    const std::uint64_t idx = get<std::uint32_t>(delta, kFixed + 4 * i);
    if (idx >= elems || (i > 0 && idx <= previous)) bad("indices are not increasing within the tensor");
    previous = idx;
  }
  return p;
}

}  // namespace

std::optional<std::string> encode_sparse_delta(std::string_view base, const std::string& base_sha256, std::string_view target,
                                               std::size_t elem_size, std::size_t max_bytes) {
  if (!valid_elem_size(elem_size) || base.size() != target.size() || base.size() % elem_size || base_sha256.size() != kShaHex)
    return std::nullopt;
  const std::uint64_t elems = base.size() / elem_size;
  if (elems > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  std::string indices, values;
  for (std::uint64_t i = 0; i < elems; ++i) {
    if (std::memcmp(base.data() + i * elem_size, target.data() + i * elem_size, elem_size) == 0) continue;
    put<std::uint32_t>(indices, static_cast<std::uint32_t>(i));
    values.append(target.data() + i * elem_size, elem_size);
    if (kFixed + indices.size() + values.size() > max_bytes) return std::nullopt;
  }
  std::string out(kDeltaMagic);
  out += base_sha256;
  put<std::uint32_t>(out, static_cast<std::uint32_t>(elem_size));
  put<std::uint64_t>(out, base.size());
  put<std::uint64_t>(out, indices.size() / 4);
  out += indices;
  out += values;
  return out;
}

DeltaBase sparse_delta_base(std::string_view delta, const std::string& where) {
  const Parsed p = parse(delta, where);
  return {p.base_sha256, p.size};
}

std::string apply_sparse_delta(std::string_view delta, std::string_view base, const std::string& where) {
  const Parsed p = parse(delta, where);
  if (base.size() != p.size || io::sha256_hex(base) != p.base_sha256)
    throw_error(ErrorCode::mismatch, kRoom, where + ": the delta's base tensor " + p.base_sha256 + " does not match the bytes found for it");
  std::string out(base);
  const std::size_t values = kFixed + 4 * p.count;
  for (std::uint64_t i = 0; i < p.count; ++i) {
    const std::uint64_t idx = get<std::uint32_t>(delta, kFixed + 4 * i);
    std::memcpy(out.data() + idx * p.elem_size, delta.data() + values + i * p.elem_size, p.elem_size);
  }
  return out;
}

std::optional<std::string> read_part_following_delta(
    const std::string& name, int depth, const std::string& where,
    const std::function<std::optional<std::string>(const std::string&)>& read_stored,
    const std::function<std::optional<std::string>(const DeltaBase&, int)>& find_base) {
  if (auto bytes = read_stored(name)) return bytes;
  const std::string delta_name = name + std::string(kDeltaSuffix);
  auto delta = read_stored(delta_name);
  if (!delta) return std::nullopt;
  const std::string what = where + std::string(kPartsSuffix) + "/" + delta_name;
  if (depth >= kMaxDeltaChain)
    throw_error(ErrorCode::invalid, kRoom, what + ": more than " + std::to_string(kMaxDeltaChain) + " deltas in a chain");
  const DeltaBase base = sparse_delta_base(*delta, what);
  if (auto bytes = find_base(base, depth + 1)) return apply_sparse_delta(*delta, *bytes, what);
  throw_error(ErrorCode::not_found, kRoom, what + " applies to tensor " + base.sha256 + ", which no other version holds",
              "a delta is published against an earlier version on the same hub; fetch that version too");
}

}  // namespace gaggle::bundle
