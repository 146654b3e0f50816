#include "bundle/manifest.h"

#include <algorithm>
#include <set>

#include "bundle/contents.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/json_schema.h"
#include "io/mapped_file.h"
#include "io/sha256.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace gaggle::bundle {
namespace {

const char* const kFixedFields[] = {"format_version", "name", "version", "base_fingerprint", "files"};

}  // namespace

const FileEntry* Manifest::find(const std::string& path) const {
  for (const auto& f : files)
    if (f.path == path) return &f;
  return nullptr;
}

void check_manifest_path(const std::string& path, const std::string& source) {
  auto bad = [&](const std::string& why) {
    throw_error(ErrorCode::invalid, "bundle", source + ": file path '" + path + "' " + why,
                "manifest paths are relative to the bundle directory and stay inside it");
  };
  if (path.empty()) bad("is empty");
  if (path.front() == '/') bad("is absolute");
  if (path.find('\\') != std::string::npos) bad("contains a backslash");
  if (path.find('\0') != std::string::npos) bad("contains a NUL byte");
  std::size_t start = 0;
  while (true) {
    auto slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty()) bad("has an empty component");
    if (part == "..") bad("escapes the bundle directory ('..')");
    if (part == ".") bad("has a '.' component");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (path == kManifestFile || path == kSignatureFile) bad("names the manifest or its signature");
}

Manifest parse_manifest(std::string_view bytes, const std::string& source) {
  if (bytes.size() > kManifestMaxBytes)
    throw_error(ErrorCode::invalid, "bundle",
                source + ": is " + std::to_string(bytes.size()) + " bytes; the limit is " + std::to_string(kManifestMaxBytes),
                "a manifest lists files, it does not hold data; put large content in files of the bundle");
  json j = io::parse_json(bytes, source);
  if (j.is_object()) {
    auto fv = j.find("format_version");
    if (fv != j.end() && fv->is_number_integer() && fv->get<long long>() > kManifestFormatVersion)
      throw_error(ErrorCode::unsupported, "bundle",
                  source + ": format_version " + std::to_string(fv->get<long long>()) + " is newer than this gaggle reads (" +
                      std::to_string(kManifestFormatVersion) + ")",
                  "upgrade gaggle to read this bundle");
  }
  try {
    io::validate_json(j, io::embedded_schema("bundle-manifest"), source);
  } catch (const Error& e) {
    throw Error(e.code(), "bundle", e.what(), e.hint());
  }
  Manifest m;
  m.format_version = j["format_version"].get<int>();
  m.name = j["name"].get<std::string>();
  m.version = j["version"].get<std::string>();
  m.base_fingerprint = j["base_fingerprint"].get<std::string>();
  std::set<std::string> seen;
  for (std::size_t i = 0; i < j["files"].size(); ++i) {
    const json& f = j["files"][i];
    FileEntry e;
    e.path = f["path"].get<std::string>();
    e.size = f["size"].get<std::uint64_t>();
    e.sha256 = f["sha256"].get<std::string>();
    if (f.contains("url")) e.url = f["url"].get<std::string>();
    if (f.contains("parts_url")) e.parts_url = f["parts_url"].get<std::string>();
    if (f.contains("safetensors"))
      e.tensors = tensor_index_from_json(f["safetensors"], source + ": /files/" + std::to_string(i));
    check_manifest_path(e.path, source + ": /files/" + std::to_string(i));
    if (!e.parts_url.empty() && (!e.tensors || !e.url.empty()))
      throw_error(ErrorCode::invalid, "bundle", source + ": /files/" + std::to_string(i) + ": file '" + e.path +
                                                    "' has a parts_url " +
                                                    (e.tensors ? "and a url (one place only)" : "but no safetensors index"));
    if (!seen.insert(e.path).second)
      throw_error(ErrorCode::invalid, "bundle", source + ": /files/" + std::to_string(i) + ": file '" + e.path + "' is listed twice");
    m.files.push_back(std::move(e));
  }
  // A file and a directory of the same name cannot both exist.
  for (const auto& p : seen) {
    auto next = seen.upper_bound(p);
    if (next != seen.end() && next->size() > p.size() && next->compare(0, p.size(), p) == 0 && (*next)[p.size()] == '/')
      throw_error(ErrorCode::invalid, "bundle", source + ": '" + p + "' is listed both as a file and as a directory of '" + *next + "'");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool fixed = false;
    for (const char* k : kFixedFields) fixed = fixed || it.key() == k;
    if (!fixed) m.body[it.key()] = it.value();
  }
  return m;
}

Manifest read_manifest(const fs::path& bundle_dir) {
  fs::path path = bundle_dir / kManifestFile;
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st))
    throw_error(ErrorCode::not_found, "bundle", "'" + path.string() + "' does not exist",
                "is '" + bundle_dir.string() + "' an expert bundle? It needs a manifest.json");
  if (!fs::is_regular_file(st)) throw_error(ErrorCode::invalid, "bundle", "'" + path.string() + "' is not a regular file");
  auto size = fs::file_size(path, ec);
  if (!ec && size > kManifestMaxBytes)
    throw_error(ErrorCode::invalid, "bundle",
                path.string() + ": is " + std::to_string(size) + " bytes; the limit is " + std::to_string(kManifestMaxBytes),
                "a manifest lists files, it does not hold data");
  return parse_manifest(io::read_file(path), path.string());
}

std::string serialize_manifest(const Manifest& m) {
  json j = m.body.is_object() ? m.body : json::object();
  j["format_version"] = m.format_version;
  j["name"] = m.name;
  j["version"] = m.version;
  j["base_fingerprint"] = m.base_fingerprint;
  std::vector<FileEntry> files = m.files;
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  json list = json::array();
  for (const auto& f : files) {
    json e = {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}};
    if (!f.url.empty()) e["url"] = f.url;
    if (!f.parts_url.empty()) e["parts_url"] = f.parts_url;
    if (f.tensors) e["safetensors"] = tensor_index_to_json(*f.tensors);
    list.push_back(std::move(e));
  }
  j["files"] = std::move(list);
  return j.dump(2) + "\n";
}

void write_manifest(const fs::path& dir, Manifest m) {
  const fs::path bundle_dir = normalized_dir(dir);
  if (!fs::is_directory(bundle_dir))
    throw_error(ErrorCode::not_found, "bundle", "bundle directory '" + bundle_dir.string() + "' does not exist");
  std::vector<FileEntry> files;
  std::set<std::string> present;
  for (auto it = fs::recursive_directory_iterator(bundle_dir); it != fs::recursive_directory_iterator(); ++it) {
    auto st = it->symlink_status();
    std::string rel = it->path().lexically_relative(bundle_dir).generic_string();
    if (fs::is_symlink(st))
      throw_error(ErrorCode::invalid, "bundle", "'" + it->path().string() + "' is a symbolic link; bundles hold regular files only",
                  "copy the file into the bundle instead of linking it");
    if (fs::is_directory(st)) continue;
    if (!fs::is_regular_file(st)) throw_error(ErrorCode::invalid, "bundle", "'" + it->path().string() + "' is not a regular file");
    if (rel == kManifestFile || rel == kSignatureFile) continue;
    if (it->path().filename().string().starts_with(".gaggle-tmp-")) continue;
    check_manifest_path(rel, bundle_dir.string());
    FileEntry e;
    e.path = rel;
    e.size = fs::file_size(it->path());
    e.sha256 = io::sha256_file_hex(it->path());
    if (rel.ends_with(".safetensors")) {
      io::MappedFile file(it->path());
      e.tensors = index_safetensors(file.bytes(), it->path().string());
    }
    if (const FileEntry* old = m.find(rel)) {
      e.url = old->url;
      if (e.tensors && old->tensors) e.parts_url = old->parts_url;
    }
    present.insert(rel);
    files.push_back(std::move(e));
  }
  for (const auto& old : m.files)
    if (old.remote() && !present.count(old.path)) files.push_back(old);
  m.files = std::move(files);
  std::string bytes = serialize_manifest(m);
  // What we write must read back: catch a bad name or version here, not at verify time.
  parse_manifest(bytes, (bundle_dir / kManifestFile).string());
  std::error_code ec;
  fs::remove(bundle_dir / kSignatureFile, ec);
  io::write_file_atomic(bundle_dir / kManifestFile, bytes);
}

}  // namespace gaggle::bundle
