#include "bundle/contents.h"

#include <algorithm>
#include <set>
#include <vector>

#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {

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
    if (!listed.count(rel))
      throw_error(ErrorCode::mismatch, "bundle", where + ": file '" + rel + "' is not listed in the manifest",
                  "every file of a signed bundle must be listed; remove it, or re-sign the bundle if it belongs there");
  }
  for (const auto& f : m.files) {
    fs::path p = bundle_dir / fs::path(f.path);
    auto st = fs::symlink_status(p, ec);
    if (ec || !fs::exists(st)) {
      if (allow_remote_files && !f.url.empty()) continue;
      throw_error(ErrorCode::not_found, "bundle", where + ": file '" + f.path + "' is listed in the manifest but missing",
                  f.url.empty() ? "the bundle is incomplete; fetch it again" : "the file lives at " + f.url + "; fetch it first");
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
  }
}

}  // namespace gaggle::bundle
