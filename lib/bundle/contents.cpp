#include "bundle/contents.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "bundle/tensor_delta.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/mapped_file.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {

namespace {

// "<path>.parts/<part>" of a listed safetensors file whose index names that part.
bool is_listed_part(const Manifest& m, const std::string& rel) {
  const auto slash = rel.rfind('/');
  if (slash == std::string::npos) return false;
  const std::string dir = rel.substr(0, slash), part = rel.substr(slash + 1);
  if (!dir.ends_with(kPartsSuffix)) return false;
  const FileEntry* f = m.find(dir.substr(0, dir.size() - kPartsSuffix.size()));
  if (!f || !f->tensors) return false;
  if (part == kHeaderPart) return true;
  // A tensor kept whole (<sha256>) or as a delta against an earlier version (<sha256>.delta).
  const std::string sha = part.ends_with(kDeltaSuffix) ? part.substr(0, part.size() - kDeltaSuffix.size()) : part;
  for (const auto& t : f->tensors->tensors)
    if (t.sha256 == sha) return true;
  return false;
}

std::optional<std::string> read_if_file(const fs::path& p) {
  std::error_code ec;
  auto st = fs::symlink_status(p, ec);
  if (ec || !fs::is_regular_file(st)) return std::nullopt;
  return io::read_file(p);
}

// Part `name` of `file` as kept in `version_dir`, following a sparse delta to its base in
// another version beside it — the hub's layout, experts/<name>/<version>/.
std::optional<std::string> read_part(const fs::path& version_dir, const std::string& file, const std::string& name,
                                     int depth, const std::string& where) {
  const fs::path parts = version_dir / fs::path(file + std::string(kPartsSuffix));
  return read_part_following_delta(
      name, depth, where, [&](const std::string& n) { return read_if_file(parts / n); },
      [&](const DeltaBase& base, int base_depth) -> std::optional<std::string> {
        std::error_code ec;
        for (auto it = fs::directory_iterator(version_dir.parent_path(), ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
          if (it->path() == version_dir || !it->is_directory(ec)) continue;
          if (auto bytes = read_part(it->path(), file, base.sha256, base_depth, where)) return bytes;
        }
        return std::nullopt;
      });
}

void check_parts(const fs::path& bundle_dir, const FileEntry& f, const std::string& where) {
  const std::string label = where + ": file '" + f.path + "'";
  join_parts(*f.tensors, f.size, f.sha256,
             [&](const std::string& name) { return read_part(bundle_dir, f.path, name, 0, label); }, label);
}

}  // namespace

fs::path normalized_dir(const fs::path& dir) {
  fs::path base = dir.lexically_normal();
  if (!base.has_filename() && base.has_parent_path() && base != base.root_path()) base = base.parent_path();
  return base.empty() ? fs::path(".") : base;
}

void check_bundle_files(const fs::path& dir, const Manifest& m, bool allow_remote_files) {
  const fs::path bundle_dir = normalized_dir(dir);
  std::set<std::string> listed;
  for (const auto& f : m.files) listed.insert(f.path);
  std::vector<std::pair<std::string, fs::file_status>> entries;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(bundle_dir, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    entries.emplace_back(it->path().lexically_relative(bundle_dir).generic_string(), it->symlink_status());
  if (ec) throw_error(ErrorCode::io, "bundle", "cannot list '" + bundle_dir.string() + "': " + ec.message());
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string where = bundle_dir.string();
  for (const auto& [rel, st] : entries) {
    if (fs::is_symlink(st))
      throw_error(ErrorCode::invalid, "bundle", where + ": '" + rel + "' is a symbolic link; bundles hold regular files only",
                  "a link could point outside the bundle; do not use this bundle");
    if (fs::is_directory(st)) continue;
    if (!fs::is_regular_file(st)) throw_error(ErrorCode::invalid, "bundle", where + ": '" + rel + "' is not a regular file");
    if (rel == kManifestFile || rel == kSignatureFile) continue;
    if (is_listed_part(m, rel)) continue;
    if (!listed.count(rel))
      throw_error(ErrorCode::mismatch, "bundle", where + ": file '" + rel + "' is not listed in the manifest",
                  "every file of a signed bundle must be listed; remove it, or re-sign the bundle if it belongs there");
  }
  for (const auto& f : m.files) {
    fs::path p = bundle_dir / fs::path(f.path);
    auto st = fs::symlink_status(p, ec);
    if (ec || !fs::exists(st)) {
      if (f.tensors && fs::is_directory(bundle_dir / fs::path(f.path + std::string(kPartsSuffix)), ec)) {
        check_parts(bundle_dir, f, where);  // the file kept as its tensors (tensor_index.h)
        continue;
      }
      if (allow_remote_files && f.remote()) continue;
      throw_error(ErrorCode::not_found, "bundle", where + ": file '" + f.path + "' is listed in the manifest but missing",
                  !f.remote() ? "the bundle is incomplete; fetch it again"
                              : "the file lives at " + (f.url.empty() ? f.parts_url : f.url) + "; fetch it first");
    }
    if (!fs::is_regular_file(st)) throw_error(ErrorCode::invalid, "bundle", where + ": '" + f.path + "' is not a regular file");
    std::uint64_t size = fs::file_size(p, ec);
    if (ec) throw_error(ErrorCode::io, "bundle", where + ": cannot stat '" + f.path + "': " + ec.message());
    if (size != f.size)
      throw_error(ErrorCode::mismatch, "bundle",
                  where + ": file '" + f.path + "' has " + std::to_string(size) + " bytes, the manifest says " + std::to_string(f.size),
                  "the file changed after signing (or is truncated); do not use this bundle");
    std::string digest = io::sha256_file_hex(p);
    if (digest != f.sha256)
      throw_error(ErrorCode::mismatch, "bundle",
                  where + ": file '" + f.path + "' has sha256 " + digest + ", the manifest says " + f.sha256,
                  "the file changed after signing; do not use this bundle");
    if (f.tensors) {
      io::MappedFile image(p);
      check_tensor_index(*f.tensors, image.bytes(), where + ": file '" + f.path + "'");
    }
  }
}

}  // namespace gaggle::bundle
