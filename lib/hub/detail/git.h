#pragma once
// libgit2 inside lib/hub: RAII handles, error translation (read git_error_last() only
// right after a call that failed), the one-time library init, and the callbacks every
// transfer shares (credentials, progress, certificates). Internal to the hub room.
#include <git2.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "hub/progress.h"
#include "io/error.h"

namespace gaggle::hub::detail {

// Initialises libgit2 once per process (thread-safe); call before any git_* function.
void ensure_libgit2();

// Throws Error{network|not_found|exists|auth|io} with "what: <libgit2 message>" when rc < 0.
void check_git(int rc, const std::string& what);

template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
template <typename T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitDeleter<T, Free>>;

using Repository = GitPtr<git_repository, git_repository_free>;
using Remote = GitPtr<git_remote, git_remote_free>;
using Tree = GitPtr<git_tree, git_tree_free>;
using TreeEntry = GitPtr<git_tree_entry, git_tree_entry_free>;
using Commit = GitPtr<git_commit, git_commit_free>;
using Reference = GitPtr<git_reference, git_reference_free>;
using Signature = GitPtr<git_signature, git_signature_free>;
using Blob = GitPtr<git_blob, git_blob_free>;
using Config = GitPtr<git_config, git_config_free>;

std::string oid_hex(const git_oid& oid);
git_oid oid_from_hex(const std::string& hex);

// What one transfer reports: bytes/objects received or sent, for progress and figures.
struct TransferState {
  ProgressFn progress;
  std::string phase;               // "fetch" / "push"
  std::uint64_t bytes = 0;         // received (fetch) or sent (push)
  std::uint64_t objects = 0;
  int credential_attempts = 0;
  int ssh_key_attempts = 0;        // of those, the ones that offered ssh-agent's keys
  std::string url;
  std::string remote_messages;     // "remote: ..." lines from the server (hook output)
  std::string rejected_ref_status; // a push the server refused: its status text
  std::filesystem::path known_hosts;  // ssh: the only known_hosts file to trust; empty = the defaults
  std::optional<Error> failure;    // set by a callback that refused (host key, credentials): thrown as is
};

// Fills the callbacks (credentials, progress, sideband, push status) with `state` as payload.
void set_callbacks(git_remote_callbacks& callbacks, TransferState& state);

// Throws for a failed transfer call: the callback's own error when one refused (with
// "what: " in front), else check_git's translation, with ssh-specific hints for ssh URLs.
void check_transfer(int rc, const std::string& what, TransferState& state);

// Applies GAGGLE_CA_FILE / an explicit CA file to libgit2's TLS (https hubs).
void set_git_ca_file(const std::string& ca_file);

}  // namespace gaggle::hub::detail

namespace gaggle::hub::detail {

// Opens a bare repository, or creates it (for caches). Throws Error{io}.
Repository open_or_init_bare(const std::filesystem::path& path);
Repository open_repository(const std::filesystem::path& path);

// The commit a reference points at, or nothing when the ref does not exist.
std::optional<git_oid> read_ref(git_repository* repo, const char* name);

// Fetches the hub's refs/heads/main into `local_ref` of `repo`; returns its commit.
// state.bytes / state.objects say what was transferred.
git_oid fetch_main(git_repository* repo, const std::string& url, const char* local_ref, TransferState& state);

// The tree of a commit.
Tree commit_tree(git_repository* repo, const git_oid& commit);

// The bytes of the file at `path` in `tree`. When it is absent: *found = false and "" if
// `found` is given, else Error{not_found}. Error{invalid} when the path is not a file.
std::string tree_file(git_repository* repo, const git_tree* tree, const std::string& path, bool* found = nullptr);

// An exclusive advisory lock on a file (created if missing), released on destruction.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace gaggle::hub::detail
