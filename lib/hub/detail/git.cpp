#include "hub/detail/git.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include <sys/stat.h>

#include "hub/credentials.h"
#include "hub/known_hosts.h"
#include "io/error.h"

namespace gaggle::hub::detail {

namespace {

void apply_ca_file(const std::string& ca_file) {
  if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, ca_file.c_str(), nullptr) < 0) {
    const git_error* e = git_error_last();
    throw Error(ErrorCode::invalid, "hub", "cannot use CA file '" + ca_file + "': " + (e ? e->message : "unknown error"),
                "pass a PEM file with the certificate authority that signed the hub's certificate");
  }
}

}  // namespace

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    if (const char* ca = std::getenv("GAGGLE_CA_FILE"); ca && *ca) apply_ca_file(ca);
  });
}

void set_git_ca_file(const std::string& ca_file) {
  if (ca_file.empty()) return;
  ensure_libgit2();
  apply_ca_file(ca_file);
}

void check_git(int rc, const std::string& what) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  std::string message = what + ": " + (e && e->message ? e->message : "libgit2 error " + std::to_string(rc));
  int klass = e ? e->klass : GIT_ERROR_NONE;
  ErrorCode code = ErrorCode::io;
  std::string hint;
  if (rc == GIT_ENOTFOUND) {
    code = ErrorCode::not_found;
  } else if (rc == GIT_EEXISTS) {
    code = ErrorCode::exists;
  } else if (rc == GIT_EAUTH || rc == GIT_EUSER) {
    code = ErrorCode::auth;
    hint = "set GAGGLE_TOKEN (or GAGGLE_USER and GAGGLE_PASSWORD), configure a git credential helper, or load your key into ssh-agent";
  } else if (rc == GIT_ECERTIFICATE || klass == GIT_ERROR_SSL) {
    code = ErrorCode::auth;
    hint = "the server's TLS certificate was not trusted; pass --ca-file with your private CA";
  } else if (klass == GIT_ERROR_NET || klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSH) {
    code = ErrorCode::network;
    hint = "check that the hub URL is right and the server is reachable";
  }
  git_error_clear();
  throw Error(code, "hub", message, hint);
}

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

git_oid oid_from_hex(const std::string& hex) {
  git_oid oid;
  if (git_oid_fromstr(&oid, hex.c_str()) < 0)
    throw Error(ErrorCode::invalid, "hub", "'" + hex + "' is not a git object id");
  return oid;
}

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// ssh://, ssh+git://, git+ssh:// or scp-like user@host:path (a ':' before any '/').
bool is_ssh_url(const std::string& url) {
  if (starts_with(url, "ssh://") || starts_with(url, "ssh+git://") || starts_with(url, "git+ssh://")) return true;
  if (url.find("://") != std::string::npos) return false;
  auto colon = url.find(':');
  return colon != std::string::npos && colon > 0 && url.find('/') > colon;
}

// The port of an ssh URL (22 when it names none).
int ssh_port(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return 22;  // scp-like syntax has no port
  std::string authority = url.substr(scheme + 3);
  authority = authority.substr(0, authority.find('/'));
  if (auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  std::size_t colon = authority.rfind(':');
  if (colon == std::string::npos || (authority.find(']') != std::string::npos && colon < authority.find(']'))) return 22;
  try {
    int port = std::stoi(authority.substr(colon + 1));
    return port > 0 && port < 65536 ? port : 22;
  } catch (const std::exception&) {
    return 22;
  }
}

const char* kAgentHint =
    "start ssh-agent and add the key the hub's server knows you by: eval \"$(ssh-agent)\" && ssh-add ~/.ssh/id_ed25519 "
    "(gaggle reads ssh keys only from ssh-agent, through SSH_AUTH_SOCK)";

// Records why a callback refused, for check_transfer, and tells libgit2.
int refuse(TransferState& state, int rc, ErrorCode code, const std::string& message, const std::string& hint) {
  state.failure = Error(code, "hub", message, hint);
  git_error_set_str(GIT_ERROR_SSH, message.c_str());
  return rc;
}

int ssh_agent_credentials(git_credential** out, const char* username_from_url, TransferState& state) {
  std::string user = username_from_url ? username_from_url : "git";
  if (++state.ssh_key_attempts > 1)  // the agent's keys were all tried and refused
    return refuse(state, GIT_EAUTH, ErrorCode::auth,
                  "the ssh server refused every key in ssh-agent for user '" + user + "'",
                  "add the key whose public half is in the server's authorized_keys for '" + user +
                      "' to the agent (ssh-add KEY); 'ssh-add -l' lists the keys the agent holds");
  const char* sock = std::getenv("SSH_AUTH_SOCK");
  if (!sock || !*sock)
    return refuse(state, GIT_EAUTH, ErrorCode::auth, "no ssh-agent to log in as '" + user + "' (SSH_AUTH_SOCK is not set)",
                  kAgentHint);
  struct stat st {};
  if (::stat(sock, &st) != 0 || !S_ISSOCK(st.st_mode))
    return refuse(state, GIT_EAUTH, ErrorCode::auth,
                  "no ssh-agent to log in as '" + user + "': SSH_AUTH_SOCK '" + sock + "' is not a socket", kAgentHint);
  return git_credential_ssh_key_from_agent(out, user.c_str());
}

int on_credentials(git_credential** out, const char* url, const char* username_from_url, unsigned int allowed_types,
                   void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  // libgit2 calls again after a rejected credential: give up after a few tries instead of looping.
  if (++state.credential_attempts > 3) {
    git_error_set_str(GIT_ERROR_NET, "authentication failed (credentials were rejected)");
    return GIT_EAUTH;
  }
  // ssh: keys from ssh-agent only (never a key file, never a password prompt).
  if (allowed_types & GIT_CREDENTIAL_SSH_KEY) return ssh_agent_credentials(out, username_from_url, state);
  if (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
    if (auto c = find_credential(url ? url : state.url))
      return git_credential_userpass_plaintext_new(out, c->username.c_str(), c->password.c_str());
  }
  if (allowed_types & GIT_CREDENTIAL_USERNAME) {
    return git_credential_username_new(out, username_from_url ? username_from_url : "git");
  }
  git_error_set_str(GIT_ERROR_NET, "the hub asks for credentials and none were found");
  return GIT_EAUTH;
}

std::string join_paths(const std::vector<std::filesystem::path>& files) {
  std::string out;
  for (const auto& f : files) out += (out.empty() ? "" : ", ") + f.string();
  return out;
}

// ssh host keys: checked against known_hosts (hub/known_hosts.h); TLS is left to libgit2.
int on_certificate_check(git_cert* cert, int /*valid*/, const char* host, void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;
  const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
  std::string h = host ? host : "";
  int port = ssh_port(state.url);
  std::string name = known_hosts_name(h, port);
  if (!(key->type & GIT_CERT_SSH_RAW) || !key->hostkey)
    return refuse(state, GIT_ECERTIFICATE, ErrorCode::unsupported, "cannot check the host key of " + name +
                  ": the ssh library did not hand it over", "");
  try {
    std::string_view blob(key->hostkey, key->hostkey_len);
    auto files = known_hosts_files(state.known_hosts);
    HostKeyCheck c = check_known_hosts(files, h, port, blob);
    std::string presented = host_key_description(blob);
    std::string at = c.file.string() + " line " + std::to_string(c.line);
    switch (c.status) {
      case HostKeyStatus::match: return 0;
      case HostKeyStatus::unknown:
        return refuse(state, GIT_ECERTIFICATE, ErrorCode::auth,
                      "unknown ssh host " + name + " (" + presented + "): not in known_hosts (" + join_paths(files) + ")",
                      "gaggle never trusts a host on first use: check this fingerprint with the hub's administrator, "
                      "then add the key: ssh-keyscan " + (port == 22 ? "" : "-p " + std::to_string(port) + " ") + h +
                          " >> ~/.ssh/known_hosts (or name a file with --ssh-known-hosts FILE or GAGGLE_SSH_KNOWN_HOSTS)");
      case HostKeyStatus::changed:
        return refuse(state, GIT_ECERTIFICATE, ErrorCode::auth,
                      "the ssh host key of " + name + " has CHANGED: it presented " + presented + " but " + at +
                          " lists another key; someone may be intercepting the connection",
                      "ask the hub's administrator; if the key really changed, remove the old one (ssh-keygen -R '" + name +
                          "' -f " + c.file.string() + ") and add the new one");
      case HostKeyStatus::revoked:
        return refuse(state, GIT_ECERTIFICATE, ErrorCode::auth,
                      "the ssh host key of " + name + " (" + presented + ") is marked @revoked in " + at, "");
    }
  } catch (const Error& e) {
    state.failure = e;
    git_error_set_str(GIT_ERROR_SSH, e.what());
    return GIT_ECERTIFICATE;
  } catch (const std::exception& e) {
    return refuse(state, GIT_ECERTIFICATE, ErrorCode::io, std::string("cannot check the ssh host key: ") + e.what(), "");
  }
  return GIT_ECERTIFICATE;
}

int on_transfer(const git_indexer_progress* stats, void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  state.bytes = stats->received_bytes;
  state.objects = stats->received_objects;
  if (state.progress)
    state.progress(Progress{state.phase, state.url, stats->received_objects, stats->total_objects, "objects"});
  return 0;
}

int on_push_transfer(unsigned int current, unsigned int total, size_t bytes, void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  state.bytes = bytes;
  state.objects = current;
  if (state.progress) state.progress(Progress{state.phase, state.url, current, total, "objects"});
  return 0;
}

int on_sideband(const char* str, int len, void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  if (state.remote_messages.size() < 64 * 1024) state.remote_messages.append(str, static_cast<std::size_t>(len));
  return 0;
}

int on_push_update(const char* refname, const char* status, void* payload) {
  auto& state = *static_cast<TransferState*>(payload);
  if (status) state.rejected_ref_status = std::string(refname) + ": " + status;
  return 0;
}

}  // namespace

void check_transfer(int rc, const std::string& what, TransferState& state) {
  if (rc >= 0) return;
  if (state.failure) {
    Error e = state.failure->with_context(what);
    state.failure.reset();
    git_error_clear();
    throw e;
  }
  if (is_ssh_url(state.url)) {
    const git_error* e = git_error_last();
    std::string message = e && e->message ? e->message : "libgit2 error " + std::to_string(rc);
    int klass = e ? e->klass : GIT_ERROR_NONE;
    git_error_clear();
    if (message.find("agent") != std::string::npos)
      throw Error(ErrorCode::auth, "hub", what + ": " + message, kAgentHint);
    if (rc == GIT_EAUTH)
      throw Error(ErrorCode::auth, "hub", what + ": " + message,
                  "load the key the server authorises into ssh-agent (ssh-add KEY) and check the user in the URL");
    if (klass == GIT_ERROR_SSH || klass == GIT_ERROR_NET || klass == GIT_ERROR_OS)
      throw Error(ErrorCode::network, "hub", what + ": " + message,
                  "check the URL (ssh://USER@HOST[:PORT]/ABSOLUTE/PATH/hub.git), that sshd runs there, and that "
                  "git-upload-pack and git-receive-pack are on USER's PATH on the server");
    throw Error(ErrorCode::io, "hub", what + ": " + message);
  }
  check_git(rc, what);
}

void set_callbacks(git_remote_callbacks& callbacks, TransferState& state) {
  callbacks.credentials = on_credentials;
  callbacks.certificate_check = on_certificate_check;
  callbacks.transfer_progress = on_transfer;
  callbacks.push_transfer_progress = on_push_transfer;
  callbacks.sideband_progress = on_sideband;
  callbacks.push_update_reference = on_push_update;
  callbacks.payload = &state;
}

}  // namespace gaggle::hub::detail

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace gaggle::hub::detail {

Repository open_repository(const std::filesystem::path& path) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  int rc = git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, nullptr);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    throw Error(ErrorCode::not_found, "hub", "'" + path.string() + "' is not a git repository",
                "create a hub with 'gaggle hub init PATH', or check the --hub path");
  }
  check_git(rc, "cannot open '" + path.string() + "'");
  return Repository(raw);
}

Repository open_or_init_bare(const std::filesystem::path& path) {
  ensure_libgit2();
  std::error_code ec;
  if (std::filesystem::exists(path / "HEAD", ec)) return open_repository(path);
  std::filesystem::create_directories(path.parent_path(), ec);
  git_repository* raw = nullptr;
  check_git(git_repository_init(&raw, path.c_str(), 1), "cannot create cache repository '" + path.string() + "'");
  return Repository(raw);
}

std::optional<git_oid> read_ref(git_repository* repo, const char* name) {
  git_oid oid;
  int rc = git_reference_name_to_id(&oid, repo, name);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    return std::nullopt;
  }
  check_git(rc, std::string("cannot read ") + name);
  return oid;
}

git_oid fetch_main(git_repository* repo, const std::string& url, const char* local_ref, TransferState& state) {
  git_remote* raw = nullptr;
  check_git(git_remote_create_anonymous(&raw, repo, url.c_str()), "cannot use hub '" + url + "'");
  Remote remote(raw);
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  state.url = url;
  state.phase = "fetch";
  set_callbacks(opts.callbacks, state);
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  opts.update_fetchhead = 0;
  std::string spec = std::string("+refs/heads/main:") + local_ref;
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  check_transfer(git_remote_fetch(remote.get(), &refspecs, &opts, "gaggle fetch"), "cannot fetch hub '" + url + "'", state);
  if (const git_indexer_progress* stats = git_remote_stats(remote.get())) {
    state.bytes = stats->received_bytes;
    state.objects = stats->received_objects;
  }
  auto tip = read_ref(repo, local_ref);
  if (!tip)
    throw Error(ErrorCode::not_found, "hub", "hub '" + url + "' has no branch main",
                "is it a gaggle hub? create one with 'gaggle hub init'");
  return *tip;
}

Tree commit_tree(git_repository* repo, const git_oid& commit_id) {
  git_commit* c = nullptr;
  check_git(git_commit_lookup(&c, repo, &commit_id), "cannot read hub commit " + oid_hex(commit_id));
  Commit commit(c);
  git_tree* t = nullptr;
  check_git(git_commit_tree(&t, commit.get()), "cannot read the tree of hub commit " + oid_hex(commit_id));
  return Tree(t);
}

std::string tree_file(git_repository* repo, const git_tree* tree, const std::string& path, bool* found) {
  git_tree_entry* raw = nullptr;
  int rc = git_tree_entry_bypath(&raw, tree, path.c_str());
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    if (found) {
      *found = false;
      return {};
    }
    throw Error(ErrorCode::not_found, "hub", "'" + path + "' is missing from the hub tree");
  }
  check_git(rc, "cannot read '" + path + "' from the hub");
  TreeEntry entry(raw);
  if (git_tree_entry_type(entry.get()) != GIT_OBJECT_BLOB)
    throw Error(ErrorCode::invalid, "hub", "'" + path + "' in the hub is not a file");
  git_blob* b = nullptr;
  check_git(git_blob_lookup(&b, repo, git_tree_entry_id(entry.get())), "cannot read '" + path + "'");
  Blob blob(b);
  if (found) *found = true;
  return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                     static_cast<std::size_t>(git_blob_rawsize(blob.get())));
}

FileLock::FileLock(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorCode::io, "hub", "cannot open lock '" + path.string() + "': " + errno_text(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd_);
      throw Error(ErrorCode::io, "hub", "cannot lock '" + path.string() + "': " + errno_text(err));
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace gaggle::hub::detail
