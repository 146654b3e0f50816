#include "bundle/tensor_index.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "bundle/detail/room.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "io/sha256.h"

namespace gaggle::bundle {
namespace {

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

TensorIndex index_safetensors(std::span<const std::byte> image, const std::string& source) {
  auto header = io::SafetensorsHeader::parse(image, source);
  TensorIndex index;
  index.header_size = header.data_start;
  index.header_sha256 = io::sha256_hex(image.first(header.data_start));
  for (const auto& t : header.tensors) {
    TensorEntry e;
    e.name = t.name;
    e.dtype = std::string(io::dtype_name(t.dtype));
    e.shape = t.shape;
    e.offset = t.begin;
    e.size = t.nbytes();
    e.sha256 = io::sha256_hex(image.subspan(header.data_start + t.begin, t.nbytes()));
    index.tensors.push_back(std::move(e));
  }
  return index;
}

nlohmann::json tensor_index_to_json(const TensorIndex& index) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : index.tensors)
    tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"offset", t.offset},
                       {"size", t.size}, {"sha256", t.sha256}});
  return {{"header", {{"size", index.header_size}, {"sha256", index.header_sha256}}}, {"tensors", tensors}};
}

TensorIndex tensor_index_from_json(const nlohmann::json& j, const std::string& where) {
  auto bad = [&](const std::string& what) { throw_error(ErrorCode::invalid, kRoom, where + ": " + what); };
  if (!j.is_object() || !j.contains("header") || !j.contains("tensors") || !j["tensors"].is_array())
    bad("'safetensors' needs 'header' and a 'tensors' list");
  const auto& h = j["header"];
  if (!h.is_object() || !h.contains("size") || !h["size"].is_number_unsigned() || !h.contains("sha256") ||
      !h["sha256"].is_string() || !is_hex64(h["sha256"].get<std::string>()))
    bad("'safetensors.header' needs a size and a sha256");
  TensorIndex index;
  index.header_size = h["size"].get<std::uint64_t>();
  index.header_sha256 = h["sha256"].get<std::string>();
  std::uint64_t next = 0;
  std::set<std::string> names;
  for (std::size_t i = 0; i < j["tensors"].size(); ++i) {
    const auto& t = j["tensors"][i];
    const std::string at = "tensors/" + std::to_string(i);
    if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("dtype") ||
        !t["dtype"].is_string() || !t.contains("shape") || !t["shape"].is_array() || !t.contains("offset") ||
        !t["offset"].is_number_unsigned() || !t.contains("size") || !t["size"].is_number_unsigned() ||
        !t.contains("sha256") || !t["sha256"].is_string() || !is_hex64(t["sha256"].get<std::string>()))
      bad(at + ": needs name, dtype, shape, offset, size and sha256");
    TensorEntry e;
    e.name = t["name"].get<std::string>();
    e.dtype = t["dtype"].get<std::string>();
    for (const auto& d : t["shape"]) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) bad(at + ": shape holds " + d.dump());
      e.shape.push_back(d.get<std::int64_t>());
    }
    e.offset = t["offset"].get<std::uint64_t>();
    e.size = t["size"].get<std::uint64_t>();
    e.sha256 = t["sha256"].get<std::string>();
    if (e.offset != next) bad(at + ": tensor '" + e.name + "' does not follow the one before it (offset " + std::to_string(e.offset) + ")");
    if (!names.insert(e.name).second) bad(at + ": tensor '" + e.name + "' is listed twice");
    next = e.offset + e.size;
    index.tensors.push_back(std::move(e));
  }
  return index;
}

void check_tensor_index(const TensorIndex& index, std::span<const std::byte> image, const std::string& where) {
  TensorIndex actual = index_safetensors(image, where);
  auto mismatch = [&](const std::string& what) {
    throw_error(ErrorCode::mismatch, kRoom, where + ": " + what,
                "the manifest's tensor list does not describe the file; do not use this bundle");
  };
  if (actual.header_size != index.header_size || actual.header_sha256 != index.header_sha256)
    mismatch("the safetensors header differs from the one the manifest lists");
  if (actual.tensors.size() != index.tensors.size())
    mismatch("holds " + std::to_string(actual.tensors.size()) + " tensors, the manifest lists " +
             std::to_string(index.tensors.size()));
  for (std::size_t i = 0; i < index.tensors.size(); ++i) {
    const auto& a = actual.tensors[i];
    const auto& w = index.tensors[i];
    if (a.name != w.name || a.dtype != w.dtype || a.shape != w.shape || a.offset != w.offset || a.size != w.size ||
        a.sha256 != w.sha256)
      mismatch("tensor '" + w.name + "' differs from the manifest's entry (name, dtype, shape, range or sha256)");
  }
}

std::vector<PartSpan> part_spans(const TensorIndex& index) {
  std::vector<PartSpan> spans{{std::string(kHeaderPart), index.header_sha256, 0, index.header_size}};
  std::set<std::string> seen;
  for (const auto& t : index.tensors)
    if (seen.insert(t.sha256).second) spans.push_back({t.sha256, t.sha256, index.header_size + t.offset, t.size});
  return spans;
}

std::vector<FilePart> split_parts(const TensorIndex& index, std::string_view image) {
  std::vector<FilePart> parts;
  for (const auto& s : part_spans(index)) parts.push_back({s.name, image.substr(s.offset, s.size)});
  return parts;
}

std::string join_parts(const TensorIndex& index, std::uint64_t file_size, const std::string& file_sha256,
                       const std::function<std::optional<std::string>(const std::string&)>& read_part,
                       const std::string& where) {
  auto fetch = [&](const std::string& name, std::uint64_t size, const std::string& sha, const std::string& what) {
    auto bytes = read_part(name);
    if (!bytes)
      throw_error(ErrorCode::not_found, kRoom, where + std::string(kPartsSuffix) + "/" + name + " (" + what + ") is missing");
    if (bytes->size() != size || io::sha256_hex(*bytes) != sha)
      throw_error(ErrorCode::mismatch, kRoom,
                  where + std::string(kPartsSuffix) + "/" + name + " (" + what + ") does not match its size and sha256 in the manifest",
                  "the part changed after signing; do not use this bundle");
    return std::move(*bytes);
  };
  std::string out = fetch(std::string(kHeaderPart), index.header_size, index.header_sha256, "the header");
  std::map<std::string, std::string> cache;  // equal tensors are stored once
  for (const auto& t : index.tensors) {
    auto it = cache.find(t.sha256);
    if (it == cache.end()) it = cache.emplace(t.sha256, fetch(t.sha256, t.size, t.sha256, "tensor '" + t.name + "'")).first;
    out += it->second;
  }
  if (out.size() != file_size || io::sha256_hex(out) != file_sha256)
    throw_error(ErrorCode::mismatch, kRoom, where + ": its parts join into a file that does not match the manifest's size and sha256");
  return out;
}

}  // namespace gaggle::bundle
