#include "hub/publish.h"

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <cstdlib>
#include <random>
#include <span>
#include <thread>

#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "bundle/tensor_delta.h"
#include "bundle/tensor_index.h"
#include "bundle/verify.h"
#include "hub/detail/git.h"
#include "hub/detail/staging.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "io/atomic_file.h"
#include "io/dtype.h"
#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

struct TreeFile {
  std::string name;
  std::string content;
};

void backoff(int attempt) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  int base = std::min(2000, 20 << std::min(attempt, 7));
  std::uniform_int_distribution<int> jitter(base / 2, base + base / 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
}

detail::Signature commit_signature(git_repository* repo) {
  git_signature* sig = nullptr;
  const char* name = std::getenv("GIT_AUTHOR_NAME");
  const char* email = std::getenv("GIT_AUTHOR_EMAIL");
  if (name && email && git_signature_now(&sig, name, email) == 0) return detail::Signature(sig);
  if (git_signature_default(&sig, repo) == 0) return detail::Signature(sig);
  git_error_clear();
  detail::check_git(git_signature_now(&sig, "gaggle publish", "publish@gaggle.invalid"), "cannot make a commit signature");
  return detail::Signature(sig);
}

// The version a publish sends deltas against must be on the hub, exactly as the
// publisher has it, or nobody could rebuild the tensors.
struct DeltaBaseOnHub {
  std::string manifest_path;   // experts/<name>/<version>/manifest.json; empty: no deltas
  std::string manifest_bytes;  // what the publisher's copy holds
};

void require_delta_base(git_repository* repo, const git_tree* tree, const DeltaBaseOnHub& base, const std::string& hub) {
  const std::string where = base.manifest_path.substr(0, base.manifest_path.rfind('/'));
  bool found = false;
  const std::string bytes = detail::tree_file(repo, tree, base.manifest_path, &found);
  if (!found)
    throw Error(ErrorCode::not_found, "hub", "--delta-from: " + where + " is not on hub '" + hub + "'",
                "publish that version first, or publish without --delta-from");
  if (bytes != base.manifest_bytes)
    throw Error(ErrorCode::mismatch, "hub", "--delta-from: " + where + " on hub '" + hub + "' differs from the bundle given",
                "pass the directory of the version the hub holds");
}

// A commit on `parent` that adds tree_path/<files>. Throws Error{exists} if tree_path is there.
git_oid build_commit(git_repository* repo, const git_oid& parent_id, const std::string& tree_path,
                     const std::vector<TreeFile>& files, const std::string& message, const std::string& hub,
                     const DeltaBaseOnHub& base) {
  detail::Tree tree = detail::commit_tree(repo, parent_id);
  if (!base.manifest_path.empty()) require_delta_base(repo, tree.get(), base, hub);
  git_tree_entry* existing = nullptr;
  int rc = git_tree_entry_bypath(&existing, tree.get(), tree_path.c_str());
  if (rc == 0) {
    git_tree_entry_free(existing);
    throw Error(ErrorCode::exists, "hub", tree_path + " is already published on hub '" + hub + "'",
                "versions are immutable: bump the version in manifest.json, sign again and publish that");
  }
  if (rc != GIT_ENOTFOUND) detail::check_git(rc, "cannot read hub tree");
  git_error_clear();

  std::vector<git_oid> oids(files.size());
  std::vector<std::string> paths(files.size());
  std::vector<git_tree_update> updates(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    detail::check_git(git_blob_create_from_buffer(&oids[i], repo, files[i].content.data(), files[i].content.size()),
                      "cannot write " + files[i].name + " into the hub repository");
    paths[i] = tree_path + "/" + files[i].name;
    updates[i] = git_tree_update{};
    updates[i].action = GIT_TREE_UPDATE_UPSERT;
    updates[i].id = oids[i];
    updates[i].filemode = GIT_FILEMODE_BLOB;
    updates[i].path = paths[i].c_str();
  }
  git_oid tree_id;
  detail::check_git(git_tree_create_updated(&tree_id, repo, tree.get(), updates.size(), updates.data()),
                    "cannot build the hub tree");
  git_tree* new_tree_raw = nullptr;
  detail::check_git(git_tree_lookup(&new_tree_raw, repo, &tree_id), "cannot build the hub tree");
  detail::Tree new_tree(new_tree_raw);
  git_commit* parent_raw = nullptr;
  detail::check_git(git_commit_lookup(&parent_raw, repo, &parent_id), "cannot read hub commit");
  detail::Commit parent(parent_raw);
  detail::Signature sig = commit_signature(repo);
  const git_commit* parents[] = {parent.get()};
  git_oid commit_id;
  detail::check_git(git_commit_create(&commit_id, repo, nullptr, sig.get(), sig.get(), nullptr, message.c_str(),
                                      new_tree.get(), 1, parents),
                    "cannot write the publish commit");
  return commit_id;
}

// Local hubs: objects written straight into the hub, main moved by compare-and-swap.
void publish_local(const fs::path& hub_path, const std::string& tree_path, const std::vector<TreeFile>& files,
                   const std::string& message, const DeltaBaseOnHub& base, const PublishOptions& options,
                   PublishResult& result) {
  detail::Repository repo = detail::open_repository(hub_path);
  for (int attempt = 1;; ++attempt) {
    result.attempts = attempt;
    auto tip = detail::read_ref(repo.get(), "refs/heads/main");
    if (!tip)
      throw Error(ErrorCode::not_found, "hub", "'" + hub_path.string() + "' has no branch main",
                  "is it a gaggle hub? create one with 'gaggle hub init'");
    git_oid commit_id = build_commit(repo.get(), *tip, tree_path, files, message, options.hub, base);
    git_reference* ref = nullptr;
    int rc = git_reference_create_matching(&ref, repo.get(), "refs/heads/main", &commit_id, 1, &*tip,
                                           ("gaggle publish " + tree_path).c_str());
    if (rc == 0) {
      git_reference_free(ref);
      result.commit = detail::oid_hex(commit_id);
      return;
    }
    if ((rc == GIT_EMODIFIED || rc == GIT_ELOCKED || rc == GIT_EEXISTS) && attempt < options.max_attempts) {
      git_error_clear();
      if (options.progress) options.progress(Progress{"retry", tree_path, static_cast<std::uint64_t>(attempt), 0, "attempts"});
      backoff(attempt);
      continue;
    }
    if (rc == GIT_EMODIFIED || rc == GIT_ELOCKED)
      throw Error(ErrorCode::network, "hub", "hub '" + options.hub + "' kept moving: gave up after " +
                                                 std::to_string(attempt) + " attempts",
                  "run publish again; raise --max-attempts for very busy hubs");
    detail::check_git(rc, "cannot update main of hub '" + options.hub + "'");
  }
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// Remote hubs: a cached bare clone, fetch + commit + push, retried on non-fast-forward.
void publish_remote(const std::string& url, const std::string& tree_path, const std::vector<TreeFile>& files,
                    const std::string& message, const DeltaBaseOnHub& base, const PublishOptions& options,
                    PublishResult& result) {
  fs::path cache_root = options.cache_dir.empty() ? default_hub_cache() : options.cache_dir;
  fs::path cache = cache_root / (io::sha256_hex(url).substr(0, 16) + ".git");
  detail::FileLock lock(cache_root / (cache.filename().string() + ".lock"));
  detail::Repository repo = detail::open_or_init_bare(cache);
  for (int attempt = 1;; ++attempt) {
    result.attempts = attempt;
    detail::TransferState fetch_state;
    fetch_state.progress = options.progress;
    fetch_state.known_hosts = options.ssh_known_hosts;
    git_oid tip = detail::fetch_main(repo.get(), url, "refs/remotes/hub/main", fetch_state);
    git_oid commit_id = build_commit(repo.get(), tip, tree_path, files, message, options.hub, base);
    git_reference* ref = nullptr;
    detail::check_git(git_reference_create(&ref, repo.get(), "refs/gaggle/publish", &commit_id, 1, "gaggle publish"),
                      "cannot write the publish ref in the cache");
    git_reference_free(ref);

    git_remote* raw = nullptr;
    detail::check_git(git_remote_create_anonymous(&raw, repo.get(), url.c_str()), "cannot use hub '" + url + "'");
    detail::Remote remote(raw);
    detail::TransferState state;
    state.progress = options.progress;
    state.phase = "push";
    state.url = url;
    state.known_hosts = options.ssh_known_hosts;
    git_push_options opts = GIT_PUSH_OPTIONS_INIT;
    detail::set_callbacks(opts.callbacks, state);
    std::string spec = "refs/gaggle/publish:refs/heads/main";
    char* specs[] = {spec.data()};
    git_strarray refspecs{specs, 1};
    int rc = git_remote_push(remote.get(), &refspecs, &opts);
    std::string why;
    if (rc < 0) {
      const git_error* e = git_error_last();
      why = e && e->message ? e->message : "push failed";
    }
    result.bytes_pushed += state.bytes;
    if (rc < 0 && state.failure) detail::check_transfer(rc, "cannot push to hub '" + url + "'", state);
    if (rc == 0 && state.rejected_ref_status.empty()) {
      result.commit = detail::oid_hex(commit_id);
      return;
    }
    std::string status = state.rejected_ref_status + " " + why;
    if (contains(status, "hook declined") || contains(state.remote_messages, "push rejected"))
      throw Error(ErrorCode::auth, "hub", "hub '" + url + "' refused " + tree_path + ": " + state.remote_messages,
                  "the hub's pre-receive hook checks signature, trust and immutability; check with 'gaggle verify'");
    bool race = rc == GIT_ENONFASTFORWARD || contains(status, "non-fast-forward") || contains(status, "fetch first") ||
                contains(status, "failed to update") || contains(status, "lock") || contains(status, "stale") ||
                contains(status, "not present locally");
    if (race && attempt < options.max_attempts) {
      git_error_clear();
      if (options.progress) options.progress(Progress{"retry", tree_path, static_cast<std::uint64_t>(attempt), 0, "attempts"});
      backoff(attempt);
      continue;
    }
    if (race)
      throw Error(ErrorCode::network, "hub", "hub '" + url + "' kept moving: gave up after " + std::to_string(attempt) +
                                                 " attempts (" + status + ")",
                  "run publish again; raise --max-attempts for very busy hubs");
    if (rc < 0) detail::check_transfer(rc, "cannot push to hub '" + url + "'", state);
    throw Error(ErrorCode::network, "hub", "hub '" + url + "' rejected the push: " + status + " " + state.remote_messages);
  }
}

// An allowed-signers file trusting just the key publish signs with (when no --trust).
std::string self_trust_line(const fs::path& key) {
  bundle::PublicKey pub;
  if (key.extension() == ".pub") {
    pub = bundle::read_public_key(key);
  } else {
    std::string text = io::read_file(key);
    if (bundle::looks_like_private_key(text))
      pub = bundle::inspect_private_key(text, key.string()).pub;
    else
      pub = bundle::read_public_key(key);
  }
  pub.comment.clear();
  return "publisher namespaces=\"gaggle-bundle\" " + pub.to_openssh() + "\n";
}

// The version given to --delta-from: its tensors, by file and name, to send deltas against.
class PreviousVersion {
 public:
  PreviousVersion(const fs::path& dir, const std::string& name) {
    if (dir.empty()) return;
    manifest_ = bundle::read_manifest(dir);  // with its checks (a regular file, not oversized)
    manifest_bytes_ = io::read_file(dir / bundle::kManifestFile);
    if (manifest_.name != name)
      throw Error(ErrorCode::usage, "hub", "--delta-from '" + dir.string() + "' holds " + manifest_.name + "@" +
                                               manifest_.version + ", not a version of " + name);
    dir_ = dir;
  }

  // What the hub must hold for the deltas to be readable; no requirement without --delta-from.
  DeltaBaseOnHub on_hub() const {
    if (dir_.empty()) return {};
    return {bundle_tree_path(manifest_.name, manifest_.version) + "/" + std::string(bundle::kManifestFile),
            manifest_bytes_};
  }

  // A sparse delta for `part` of `file` against the previous version's tensor of the same
  // name, dtype and shape, when that is under half the tensor's size; else nothing.
  std::optional<std::string> delta_for(const std::string& file, const bundle::TensorIndex& index, const bundle::FilePart& part) {
    if (dir_.empty() || part.name == bundle::kHeaderPart) return std::nullopt;
    const bundle::FileEntry* old = manifest_.find(file);
    if (!old || !old->tensors) return std::nullopt;
    for (const auto& t : old->tensors->tensors)
      if (t.sha256 == part.name) return std::nullopt;  // unchanged: the hub has it whole already
    const bundle::TensorEntry* mine = nullptr;
    for (const auto& t : index.tensors)
      if (t.sha256 == part.name) mine = &t;
    const bundle::TensorEntry* theirs = nullptr;
    for (const auto& t : old->tensors->tensors)
      if (mine && t.name == mine->name && t.dtype == mine->dtype && t.shape == mine->shape) theirs = &t;
    if (!theirs) return std::nullopt;
    auto dtype = io::dtype_from_name(mine->dtype);
    if (!dtype) return std::nullopt;
    const std::string& image = old_file(file, *old);
    const std::string_view base(image.data() + old->tensors->header_size + theirs->offset, theirs->size);
    return bundle::encode_sparse_delta(base, theirs->sha256, part.bytes, io::dtype_size(*dtype), part.bytes.size() / 2);
  }

 private:
  const std::string& old_file(const std::string& file, const bundle::FileEntry& entry) {
    auto it = files_.find(file);
    if (it != files_.end()) return it->second;
    const fs::path path = dir_ / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw Error(ErrorCode::not_found, "hub", "--delta-from: '" + path.string() + "' is missing",
                  "pass the previous version's bundle directory as train-gate or pull left it");
    std::string bytes = io::read_file(path);
    if (bytes.size() != entry.size || io::sha256_hex(bytes) != entry.sha256)
      throw Error(ErrorCode::mismatch, "hub", "--delta-from: '" + path.string() + "' does not match its manifest");
    return files_.emplace(file, std::move(bytes)).first->second;
  }

  fs::path dir_;
  std::string manifest_bytes_;
  bundle::Manifest manifest_;
  std::map<std::string, std::string> files_;
};

}  // namespace

fs::path default_hub_cache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "gaggle" / "hubs";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "gaggle" / "hubs";
  return fs::temp_directory_path() / "gaggle-cache" / "hubs";
}

PublishResult publish_bundle(const fs::path& bundle_dir, const PublishOptions& options) {
  HubLocation loc = parse_hub_location(options.hub);
  if (loc.transport == HubTransport::static_index)
    throw Error(ErrorCode::usage, "hub", "'" + options.hub + "' is a static pool index, which is read-only",
                "publish to the hub's git URL; static indexes are made by serving a pulled pool");
  std::error_code ec;
  if (!fs::is_directory(bundle_dir, ec))
    throw Error(ErrorCode::not_found, "hub", "bundle '" + bundle_dir.string() + "' is not a directory");
  if (!options.ca_file.empty()) detail::set_git_ca_file(options.ca_file.string());

  // Work on a copy: the user's bundle is never modified.
  detail::ScratchDir scratch("gaggle-publish");
  fs::path staged = scratch.path() / "bundle";
  fs::copy(bundle_dir, staged, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::remove_all(staged / ".git", ec);
  bundle::Manifest manifest = bundle::read_manifest(staged);
  bool is_signed = bundle::bundle_is_signed(staged);
  fs::path key = options.key;
  if (key.empty() && fs::exists(bundle::default_signing_key(), ec)) key = bundle::default_signing_key();

  PublishResult result;
  result.name = manifest.name;
  result.version = manifest.version;
  result.tree_path = bundle_tree_path(manifest.name, manifest.version);

  // Large files go to the blob store, addressed by sha256; the manifest records where. A
  // safetensors file goes as its parts (its header and each distinct tensor, named by
  // sha256): a version that changes only the gates uploads only the gates and a header,
  // and every publisher's equal tensors are stored once.
  bool moved = false;
  HttpOptions http;
  http.ca_file = options.ca_file;
  http.progress = options.progress;
  http.phase = "upload";
  std::string store = options.blob_store;
  while (!store.empty() && store.back() == '/') store.pop_back();
  // PUTs unless the store already holds that many bytes under that name.
  auto put_once = [&](const std::string& url, std::uint64_t size, const std::function<void()>& put) {
    auto have = http_head_size(url, http);
    if (have && *have == size) return;
    put();
    result.bytes_uploaded += size;
  };
  for (auto& entry : manifest.files) {
    if (entry.remote() || entry.size < options.blob_threshold) continue;
    if (options.blob_store.empty())
      throw Error(ErrorCode::usage, "hub", "'" + entry.path + "' is " + std::to_string(entry.size) +
                                               " bytes, over the blob threshold of " + std::to_string(options.blob_threshold),
                  "pass --blob-store URL (an HTTP(S) store accepting PUT), or raise --blob-threshold");
    fs::path file = staged / entry.path;
    if (io::sha256_file_hex(file) != entry.sha256)
      throw Error(ErrorCode::mismatch, "hub", "'" + entry.path + "' does not match its sha256 in manifest.json",
                  "rebuild the manifest (sign the bundle again) before publishing");
    if (entry.tensors) {
      const std::string bytes = io::read_file(file);
      bundle::check_tensor_index(*entry.tensors, std::as_bytes(std::span(bytes.data(), bytes.size())), entry.path);
      for (const auto& part : bundle::part_spans(*entry.tensors)) {
        const std::string url = store + "/" + part.sha256;
        put_once(url, part.size, [&] { http_put_bytes(url, std::string_view(bytes).substr(part.offset, part.size), http); });
      }
      entry.parts_url = store + "/";
      result.blob_urls.push_back(entry.parts_url);
    } else {
      const std::string url = store + "/" + entry.sha256;
      put_once(url, entry.size, [&] { http_put_file(url, file, http); });
      entry.url = url;
      result.blob_urls.push_back(url);
    }
    fs::remove(file);
    moved = true;
  }
  if (moved) {
    bundle::write_manifest(staged, manifest);  // removes the old signature
    is_signed = false;
  }
  if (!is_signed) {
    if (key.empty())
      throw Error(ErrorCode::auth, "hub",
                  moved ? "moving files to the blob store changes manifest.json, which must be signed again"
                        : "bundle '" + bundle_dir.string() + "' is not signed",
                  "pass --key with your signing key (gaggle keygen makes one)");
    bundle::sign_bundle(staged, bundle::SignOptions{key});
    result.signed_now = true;
  }

  // Verify before anything leaves the machine.
  fs::path trust = options.trust_file;
  std::error_code trust_ec;
  if (trust.empty() && loc.transport == HubTransport::local && fs::is_regular_file(loc.path / "allowed_signers", trust_ec))
    trust = loc.path / "allowed_signers";  // a local hub's own trust file: what its hook would check
  if (trust.empty()) {
    if (key.empty())
      throw Error(ErrorCode::usage, "hub", "cannot verify the bundle: no --trust file and no --key",
                  "pass --trust ALLOWED_SIGNERS (or --key, whose public key is then trusted)");
    trust = scratch.path() / "allowed_signers";
    io::write_file_atomic(trust, self_trust_line(key));
  }
  if (options.progress) options.progress(Progress{"verify", result.tree_path, 0, 0, "bundles"});
  bundle::VerifyResult verified = bundle::verify_bundle(staged, bundle::VerifyOptions{trust, 0, true});
  result.principal = verified.principal;
  result.key_fingerprint = verified.key_fingerprint;

  PreviousVersion previous(options.delta_from, manifest.name);
  const DeltaBaseOnHub base = previous.on_hub();
  std::vector<TreeFile> files;
  files.push_back({std::string(bundle::kManifestFile), io::read_file(staged / bundle::kManifestFile)});
  files.push_back({std::string(bundle::kSignatureFile), io::read_file(staged / bundle::kSignatureFile)});
  for (const auto& entry : verified.manifest.files) {
    if (entry.remote()) continue;
    std::string bytes = io::read_file(staged / entry.path);
    if (!entry.tensors) {
      files.push_back({entry.path, std::move(bytes)});
      continue;
    }
    // A safetensors file goes in as its header and one blob per distinct tensor
    // (bundle/tensor_index.h): git stores equal bytes once, so a version that changes
    // only the gates adds only the gates' blobs, and a pull fetches only those.
    const std::string parts = entry.path + std::string(bundle::kPartsSuffix) + "/";
    for (const auto& part : bundle::split_parts(*entry.tensors, bytes)) {
      if (auto delta = previous.delta_for(entry.path, *entry.tensors, part)) {
        result.delta_bytes_saved += part.bytes.size() - delta->size();
        ++result.deltas;
        files.push_back({parts + part.name + std::string(bundle::kDeltaSuffix), std::move(*delta)});
        continue;
      }
      files.push_back({parts + part.name, std::string(part.bytes)});
    }
  }
  std::string message = "publish " + manifest.name + "@" + manifest.version + "\n\nsigned-by: " + verified.principal +
                        " " + verified.key_fingerprint + "\n";
  if (!options.message.empty()) message += "\n" + options.message + "\n";

  try {
    if (loc.transport == HubTransport::local)
      publish_local(loc.path, result.tree_path, files, message, base, options, result);
    else
      publish_remote(loc.url, result.tree_path, files, message, base, options, result);
  } catch (const Error& e) {
    throw e.with_context("publish " + manifest.name + "@" + manifest.version);
  }
  return result;
}

}  // namespace gaggle::hub
