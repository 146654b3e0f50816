#pragma once
// manifest.json of an expert bundle (design.md §4): format version, name, version, base
// fingerprint, the free-form description of the expert (body), and the size and sha256
// of every other file. Its exact bytes are what gets signed (manifest.json.sig), so the
// signature covers the whole bundle. Schema: manifests/bundle-manifest.schema.json.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/tensor_index.h"

namespace gaggle::bundle {

inline constexpr int kManifestFormatVersion = 1;
inline constexpr std::size_t kManifestMaxBytes = 1 << 20;  // 1 MB
inline constexpr std::string_view kManifestFile = "manifest.json";
inline constexpr std::string_view kSignatureFile = "manifest.json.sig";

// The members after sha256 are optional; their `{}` lets {path, size, sha256} leave them out.
struct FileEntry {
  std::string path;  // relative, '/'-separated, inside the bundle
  std::uint64_t size = 0;
  std::string sha256;  // 64 lowercase hex digits
  std::string url{};   // "" = stored in the bundle dir; else an http(s) blob URL, the file may be absent from a hub tree
  // "" or an http(s) base under which the file is stored as its parts (needs `tensors`):
  // <parts_url><sha256> for the header (header.sha256) and for each distinct tensor. A blob
  // store that keeps tensors, not files, shares them between versions and publishers.
  std::string parts_url{};
  // For safetensors files: the header and every tensor's dtype, shape, range and sha256
  // (bundle/tensor_index.h), so each tensor is addressed and signed on its own. Absent in
  // bundles written before it existed; they verify as before.
  std::optional<TensorIndex> tensors{};

  // The bytes live outside the bundle directory (a blob URL or a parts base).
  bool remote() const { return !url.empty() || !parts_url.empty(); }
};

struct Manifest {
  int format_version = kManifestFormatVersion;
  std::string name, version;     // name: ^[a-z0-9][a-z0-9._-]{0,63}$ ; version: semver MAJOR.MINOR.PATCH[-pre]
  std::string base_fingerprint;  // "sha256:<hex>" of the base model
  nlohmann::json body = nlohmann::json::object();  // every other field, as written
  std::vector<FileEntry> files;

  const FileEntry* find(const std::string& path) const;
};

// Validates (size limit, JSON, format version, schema, paths: relative, no '..', no
// duplicates, not the manifest or signature) and parses. Throws Error{invalid} naming
// `source` and the field's JSON pointer; Error{unsupported} for a newer format version.
Manifest parse_manifest(std::string_view bytes, const std::string& source);
// Reads bundle_dir/manifest.json (refusing a file over 1 MB before reading it).
Manifest read_manifest(const std::filesystem::path& bundle_dir);
// Deterministic bytes: keys sorted, files sorted by path, 2-space indent, final newline.
std::string serialize_manifest(const Manifest& m);
// Recomputes size + sha256 (and, for *.safetensors, the tensor index) of every regular
// file in the directory (recursively) except manifest.json and manifest.json.sig into m.files (entries with a url whose file is
// absent are kept as they are), then writes manifest.json atomically. Symlinks are an
// Error{invalid}. Writing invalidates an existing signature: manifest.json.sig is removed.
void write_manifest(const std::filesystem::path& bundle_dir, Manifest m);

// Checks a manifest path: relative, '/'-separated, no '.', '..' or empty components,
// no backslash, not manifest.json or manifest.json.sig. Throws Error{invalid}.
void check_manifest_path(const std::string& path, const std::string& source);

}  // namespace gaggle::bundle
