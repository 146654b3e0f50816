#include "hub/log.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <tuple>

#include "hub/detail/git.h"
#include "hub/detail/staging.h"
#include "hub/pool.h"
#include "hub/pull.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

// MAJOR.MINOR.PATCH as numbers, for ordering (pre-releases sort by text after that).
std::tuple<long, long, long, std::string> semver_key(const std::string& v) {
  long a = 0, b = 0, c = 0;
  char rest[64] = {0};
  std::sscanf(v.c_str(), "%ld.%ld.%ld%63s", &a, &b, &c, rest);
  return {a, b, c, rest};
}

// When each version of `name` first appears on the hub's main (oldest commit first).
std::map<std::string, std::pair<std::string, std::int64_t>> publication_commits(const fs::path& repo_path,
                                                                                  const std::string& name) {
  std::map<std::string, std::pair<std::string, std::int64_t>> out;
  std::error_code ec;
  if (!fs::exists(repo_path / "HEAD", ec)) return out;  // a static index: no history
  detail::Repository repo = detail::open_repository(repo_path);
  auto tip = detail::read_ref(repo.get(), "refs/remotes/hub/main");
  if (!tip) return out;
  git_revwalk* walk_raw = nullptr;
  detail::check_git(git_revwalk_new(&walk_raw, repo.get()), "cannot walk the hub's history");
  std::unique_ptr<git_revwalk, void (*)(git_revwalk*)> walk(walk_raw, git_revwalk_free);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  detail::check_git(git_revwalk_push(walk.get(), &*tip), "cannot walk the hub's history");
  git_oid id;
  const std::string dir = "experts/" + name;
  while (git_revwalk_next(&id, walk.get()) == 0) {
    detail::Tree tree = detail::commit_tree(repo.get(), id);
    git_tree_entry* raw = nullptr;
    if (git_tree_entry_bypath(&raw, tree.get(), dir.c_str()) != 0) {
      git_error_clear();
      continue;
    }
    detail::TreeEntry entry(raw);
    git_tree* versions_raw = nullptr;
    if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE ||
        git_tree_lookup(&versions_raw, repo.get(), git_tree_entry_id(entry.get())) != 0) {
      git_error_clear();
      continue;
    }
    detail::Tree versions(versions_raw);
    git_commit* commit_raw = nullptr;
    detail::check_git(git_commit_lookup(&commit_raw, repo.get(), &id), "cannot read a hub commit");
    detail::Commit commit(commit_raw);
    for (std::size_t i = 0; i < git_tree_entrycount(versions.get()); ++i) {
      std::string v = git_tree_entry_name(git_tree_entry_byindex(versions.get(), i));
      if (!out.count(v)) out[v] = {detail::oid_hex(id), static_cast<std::int64_t>(git_commit_time(commit.get()))};
    }
  }
  return out;
}

}  // namespace

std::vector<VersionLog> expert_log(const LogOptions& options) {
  detail::ScratchDir scratch("gaggle-log");
  PullOptions pull;
  pull.hub = options.hub;
  pull.pool_dir = scratch.path() / "pool";
  pull.trust_file = options.trust_file;
  pull.ca_file = options.ca_file;
  pull.ssh_known_hosts = options.ssh_known_hosts;
  pull.only = {options.name};
  PullResult pulled = pull_pool(pull);
  if (pulled.bundles.empty())
    throw Error(ErrorCode::not_found, "hub", "hub '" + options.hub + "' has no version of '" + options.name + "'");
  auto commits = publication_commits(pull.pool_dir / ".gaggle" / "hub.git", options.name);
  Pool pool = read_pool(pull.pool_dir);

  std::vector<VersionLog> out;
  for (const auto& b : pulled.bundles) {
    VersionLog v;
    v.version = b.version;
    v.verified = b.status != "rejected";
    v.reason = b.reason;
    v.principal = b.principal;
    if (const PoolBundle* pb = pool.find(b.name, b.version)) v.key_fingerprint = pb->key_fingerprint;
    if (auto it = commits.find(b.version); it != commits.end()) std::tie(v.commit, v.time) = it->second;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const VersionLog& a, const VersionLog& b) {
    return std::make_tuple(a.time, semver_key(a.version)) < std::make_tuple(b.time, semver_key(b.version));
  });
  const VersionLog* previous = nullptr;
  for (auto& v : out) {
    if (!v.verified) continue;
    if (previous) {
      v.first = false;
      v.changes = bundle::diff_bundles(pull.pool_dir / "bundles" / options.name / previous->version,
                                       pull.pool_dir / "bundles" / options.name / v.version);
    }
    previous = &v;
  }
  return out;
}

}  // namespace gaggle::hub
