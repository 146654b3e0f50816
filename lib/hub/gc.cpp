#include "hub/gc.h"

#include <sys/stat.h>

#include <cctype>
#include <set>

#include "bundle/manifest.h"
#include "hub/detail/git.h"
#include "io/error.h"

namespace gaggle::hub {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRoom = "hub";

bool is_sha256_name(const std::string& name) {
  if (name.size() != 64) return false;
  for (char c : name)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

// Every blob the manifests on the hub's main branch list: files with a url, and the
// header and tensors of files kept as parts (parts_url).
std::set<std::string> referenced_blobs(const fs::path& hub_path, std::size_t& manifests) {
  detail::ensure_libgit2();
  auto repo = detail::open_repository(hub_path);
  auto tip = detail::read_ref(repo.get(), "refs/heads/main");
  if (!tip) throw_error(ErrorCode::not_found, kRoom, "hub '" + hub_path.string() + "' has no main branch");
  git_commit* raw_commit = nullptr;
  detail::check_git(git_commit_lookup(&raw_commit, repo.get(), &*tip), "reading the hub's main commit");
  detail::Commit commit(raw_commit);
  git_tree* raw_tree = nullptr;
  detail::check_git(git_commit_tree(&raw_tree, commit.get()), "reading the hub's tree");
  detail::Tree root(raw_tree);
  std::set<std::string> out;
  // Walk the whole tree once; each experts/<name>/<version>/manifest.json is parsed.
  struct Walk {
    git_repository* repo;
    std::set<std::string>* out;
    std::size_t* manifests;
    std::optional<Error> failure;
  } walk{repo.get(), &out, &manifests, std::nullopt};
  auto visit = [](const char* root_path, const git_tree_entry* entry, void* payload) -> int {
    auto* w = static_cast<Walk*>(payload);
    const std::string dir(root_path);
    if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB || std::string(git_tree_entry_name(entry)) != "manifest.json" ||
        dir.rfind("experts/", 0) != 0)
      return 0;
    git_blob* raw_blob = nullptr;
    if (git_blob_lookup(&raw_blob, w->repo, git_tree_entry_id(entry)) < 0) {
      w->failure = Error(ErrorCode::io, kRoom, "hub: cannot read " + dir + "manifest.json");
      return -1;
    }
    detail::Blob blob(raw_blob);
    const std::string bytes(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                            static_cast<std::size_t>(git_blob_rawsize(blob.get())));
    try {
      auto m = bundle::parse_manifest(bytes, "hub " + dir + "manifest.json");
      for (const auto& f : m.files) {
        if (!f.url.empty()) w->out->insert(f.sha256);
        if (!f.parts_url.empty() && f.tensors)
          for (const auto& part : bundle::part_spans(*f.tensors)) w->out->insert(part.sha256);
      }
      ++*w->manifests;
    } catch (const Error& e) {
      w->failure = e;
      return -1;
    }
    return 0;
  };
  const int rc = git_tree_walk(root.get(), GIT_TREEWALK_PRE, visit, &walk);
  if (walk.failure) throw *walk.failure;
  detail::check_git(rc, "walking the hub's tree");
  return out;
}

}  // namespace

BlobGcReport gc_blob_store(const BlobGcOptions& options) {
  if (!fs::is_directory(options.blob_dir))
    throw_error(ErrorCode::not_found, kRoom, "blob store directory '" + options.blob_dir.string() + "' does not exist");
  // The cut-off is taken before the hub is read: a blob PUT after it is young whatever
  // the hub says, and a manifest pushed after the read only lists blobs PUT before it.
  const auto cutoff = fs::file_time_type::clock::now() - options.grace;
  BlobGcReport report;
  const std::set<std::string> referenced = referenced_blobs(options.hub, report.manifests);
  report.referenced = referenced.size();
  std::set<std::string> present;
  for (const auto& entry : fs::directory_iterator(options.blob_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !is_sha256_name(name)) continue;
    present.insert(name);
    if (referenced.count(name)) {
      ++report.kept_referenced;
      continue;
    }
    std::error_code ec;
    const auto mtime = fs::last_write_time(entry.path(), ec);
    if (ec || mtime > cutoff) {
      ++report.kept_young;
      continue;
    }
    const std::uint64_t bytes = entry.file_size(ec);
    if (!options.dry_run) {
      fs::remove(entry.path(), ec);
      if (ec)
        throw_error(ErrorCode::io, kRoom, "cannot remove '" + entry.path().string() + "': " + ec.message());
    }
    report.removed.push_back({name, bytes});
    report.removed_bytes += bytes;
  }
  for (const auto& sha : referenced)
    if (!present.count(sha)) report.missing.push_back(sha);
  return report;
}

std::chrono::seconds parse_duration(const std::string& text) {
  std::size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (...) {
    value = -1;
  }
  const std::string unit = value >= 0 ? text.substr(used) : "";
  long long scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (value < 0 || scale == 0)
    throw_error(ErrorCode::usage, kRoom, "'" + text + "' is not a duration", "write e.g. 90s, 15m, 24h or 7d");
  return std::chrono::seconds(value * scale);
}

}  // namespace gaggle::hub
