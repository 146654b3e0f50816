#include "hub/pull.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include "bundle/manifest.h"
#include "bundle/tensor_delta.h"
#include "bundle/tensor_index.h"
#include "bundle/verify.h"
#include "hub/detail/git.h"
#include "hub/detail/index_cache.h"
#include "hub/detail/local_parts.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/pool_trust.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

// An SSHSIG signature is a few hundred bytes; a static index's is read with this bound.
constexpr std::uint64_t kMaxSignatureBytes = std::uint64_t{1} << 20;

// One bundle offered by the source: its manifest and signature bytes, and how to get
// each file listed in the manifest.
struct Candidate {
  std::string name, version;  // where the source keeps it
  std::string manifest_bytes, signature_bytes;
  // Fills `out` with the file's bytes when the source holds them inline (git tree);
  // returns false when the file must be downloaded from file_url().
  std::function<bool(const bundle::FileEntry&, std::string& out)> inline_file;
  std::function<std::string(const bundle::FileEntry&)> file_url;
};

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A plain write into a staging directory: AtomicDirectory::commit fsyncs the whole tree
// before it moves into place, so one fsync per file there is enough.
void write_staged(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error(ErrorCode::io, "hub", "cannot write '" + path.string() + "'");
}

bool wanted(const std::vector<std::string>& only, const std::string& name, const std::string& version) {
  if (only.empty()) return true;
  for (const auto& o : only)
    if (o == name || o == name + "@" + version) return true;
  return false;
}

class Installer {
 public:
  Installer(const PullOptions& options, Pool& pool, PullResult& result)
      : options_(options), pool_(pool), result_(result), local_(options.pool_dir, pool) {
    http_.ca_file = options.ca_file;
    http_.retries = options.retries;
    http_.progress = options.progress;
    http_.phase = "download";
    fs::create_directories(blobs_dir());
    fs::create_directories(partial_dir());
    io::remove_stale_temporaries(blobs_dir());
  }

  fs::path blobs_dir() const { return options_.pool_dir / "blobs" / "sha256"; }
  // Makes the blob directory's new entries durable (before pool.json refers to them).
  void finish() const { io::fsync_path(blobs_dir()); }
  fs::path partial_dir() const { return options_.pool_dir / ".gaggle" / "partial"; }
  const HttpOptions& http() const { return http_; }
  detail::LocalParts& local_parts() { return local_; }

  // Installed, unchanged or rejected; never throws for a problem of this bundle alone.
  void offer(const Candidate& c, const std::string& manifest_sha) {
    PulledBundle report{c.name, c.version, "", "", ""};
    std::string label = c.name + "@" + c.version;
    const PoolBundle* have = pool_.find(c.name, c.version);
    std::error_code ec;
    if (have && have->manifest_sha256 == manifest_sha && fs::is_directory(options_.pool_dir / have->path, ec)) {
      report.status = "unchanged";
      report.principal = have->principal;
      ++result_.unchanged;
      result_.bundles.push_back(report);
      return;
    }
    if (have && have->manifest_sha256 != manifest_sha) {
      report.status = "rejected";
      report.reason = "differs from the copy already in the pool; published versions are immutable";
      ++result_.rejected;
      result_.bundles.push_back(report);
      return;
    }
    try {
      PoolBundle entry = install(c, label);
      report.status = "installed";
      report.principal = entry.principal;
      ++result_.installed;
      pool_.bundles.push_back(std::move(entry));
    } catch (const Error& e) {
      report.status = "rejected";
      report.reason = e.what();
      ++result_.rejected;
    }
    result_.bundles.push_back(report);
  }

 private:
  // The blob for `entry`, stored content-addressed after its sha256 and size check.
  fs::path fetch_blob(const Candidate& c, const bundle::FileEntry& entry) {
    fs::path blob = blobs_dir() / entry.sha256;
    std::error_code ec;
    if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == entry.size) return blob;
    std::string bytes;
    if (c.inline_file && c.inline_file(entry, bytes)) {
      if (bytes.size() != entry.size || io::sha256_hex(bytes) != entry.sha256)
        throw Error(ErrorCode::mismatch, "hub", "'" + entry.path + "' does not match the size and sha256 in manifest.json");
      return store_blob(bytes, blob, ".inline");
    }
    if (entry.tensors)
      if (auto joined = assemble_from_parts(c, entry)) return store_blob(*joined, blob, ".joined");
    std::string url = c.file_url(entry);
    fs::path part = partial_dir() / (entry.sha256 + ".part");
    result_.http_bytes += http_download(url, part, entry.size, http_);
    std::uint64_t size = fs::file_size(part, ec);
    if (ec || size != entry.size || io::sha256_file_hex(part) != entry.sha256) {
      fs::remove(part, ec);
      throw Error(ErrorCode::mismatch, "hub", "'" + entry.path + "' downloaded from '" + url +
                                                  "' does not match the size and sha256 in manifest.json");
    }
    fs::rename(part, blob);
    return blob;
  }

  // Checked bytes become the blob: written beside, fsync'ed and renamed in (a blob is
  // trusted by its name once stored); the blob directory is fsync'ed once, before
  // pool.json (finish()).
  fs::path store_blob(std::string_view bytes, const fs::path& blob, const char* suffix) {
    fs::path part = partial_dir() / (blob.filename().string() + suffix);
    write_staged(part, bytes);
    io::fsync_path(part);
    fs::rename(part, blob);
    return blob;
  }

  // A safetensors file rebuilt from its parts: the ones the pool already holds, the rest
  // from the blob store (parts_url) or as byte ranges of the file's URL. Nothing when the
  // file is better downloaded whole (no part is local, or the server ignores Range).
  // join_parts checks every part against the signed index, and the file's sha256.
  std::optional<std::string> assemble_from_parts(const Candidate& c, const bundle::FileEntry& entry) {
    const bundle::TensorIndex& index = *entry.tensors;
    const std::vector<bundle::PartSpan> spans = bundle::part_spans(index);
    std::map<std::string, std::string> got;
    std::vector<const bundle::PartSpan*> missing;
    std::uint64_t reused = 0;
    for (const auto& s : spans) {
      auto bytes = local_.read(s.sha256, s.size);
      if (bytes) {
        reused += s.size;
        got[s.name] = std::move(*bytes);
      } else {
        missing.push_back(&s);
      }
    }
    const std::string where = c.name + "@" + c.version + "/" + entry.path;
    if (!entry.parts_url.empty()) {
      for (const bundle::PartSpan* s : missing)
        got[s->name] = http_get(entry.parts_url + s->sha256, http_, &result_.http_bytes, s->size);
    } else {
      if (reused == 0) return std::nullopt;  // nothing to save: one whole download
      const std::string url = c.file_url(entry);
      // Neighbouring missing parts travel as one range.
      for (std::size_t i = 0; i < missing.size();) {
        std::size_t j = i + 1;
        std::uint64_t end = missing[i]->offset + missing[i]->size;
        while (j < missing.size() && missing[j]->offset == end) end += missing[j++]->size;
        auto bytes = http_get_range(url, missing[i]->offset, end - missing[i]->offset, http_, &result_.http_bytes);
        if (!bytes) return std::nullopt;  // the server ignores Range
        for (std::size_t k = i; k < j; ++k)
          got[missing[k]->name] = bytes->substr(missing[k]->offset - missing[i]->offset, missing[k]->size);
        i = j;
      }
    }
    result_.reused_bytes += reused;
    return bundle::join_parts(index, entry.size, entry.sha256,
                              [&](const std::string& name) -> std::optional<std::string> {
                                auto it = got.find(name);
                                if (it == got.end()) return std::nullopt;
                                return std::move(it->second);
                              },
                              where);
  }

  PoolBundle install(const Candidate& c, const std::string& label) {
    if (options_.progress) options_.progress(Progress{"install", label, 0, 0, "bundles"});
    bundle::Manifest m = bundle::parse_manifest(c.manifest_bytes, label + "/manifest.json");
    if (m.name != c.name || m.version != c.version)
      throw Error(ErrorCode::mismatch, "hub",
                  "the manifest names " + m.name + "@" + m.version + " but the hub keeps it as " + label);
    fs::path parent = options_.pool_dir / "bundles" / c.name;
    fs::create_directories(parent);
    io::remove_stale_temporaries(parent);
    io::AtomicDirectory dir(parent / c.version);
    write_staged(dir.path() / bundle::kManifestFile, c.manifest_bytes);
    write_staged(dir.path() / bundle::kSignatureFile, c.signature_bytes);
    std::uint64_t bytes = c.manifest_bytes.size() + c.signature_bytes.size();
    for (const auto& entry : m.files) {
      bundle::check_manifest_path(entry.path, label + "/manifest.json");
      fs::path blob = fetch_blob(c, entry);
      fs::path dest = dir.path() / entry.path;
      fs::create_directories(dest.parent_path());
      std::error_code ec;
      fs::create_hard_link(blob, dest, ec);
      if (ec) fs::copy_file(blob, dest);
      bytes += entry.size;
    }
    if (options_.progress) options_.progress(Progress{"verify", label, 0, 0, "bundles"});
    bundle::VerifyResult v = bundle::verify_bundle(dir.path(), bundle::VerifyOptions{options_.trust_file, 0, false});
    if (v.name != c.name || v.version != c.version)
      throw Error(ErrorCode::mismatch, "hub", "verified bundle is " + v.name + "@" + v.version + ", not " + label);
    dir.commit(/*replace=*/true);  // a directory the pool does not list is a leftover
    local_.add_bundle(parent / c.version);
    PoolBundle e;
    e.name = c.name;
    e.version = c.version;
    e.path = "bundles/" + c.name + "/" + c.version;
    e.principal = v.principal;
    e.key_fingerprint = v.key_fingerprint;
    e.manifest_sha256 = io::sha256_hex(c.manifest_bytes);
    e.bytes = bytes;
    return e;
  }

  const PullOptions& options_;
  Pool& pool_;
  PullResult& result_;
  HttpOptions http_;
  detail::LocalParts local_;
};

// Part `name` of `file` in one version's tree, following a sparse delta
// (bundle/tensor_delta.h) to its base: a tensor the pool already holds, else the same
// file's part in another version of the expert on the hub (itself maybe a delta).
std::optional<std::string> hub_part(git_repository* repo, const git_tree* versions, const git_tree* version,
                                    const std::string& file, const std::string& name, int depth, const std::string& where,
                                    detail::LocalParts& local) {
  const std::string parts = file + std::string(bundle::kPartsSuffix) + "/";
  return bundle::read_part_following_delta(
      name, depth, where,
      [&](const std::string& n) -> std::optional<std::string> {
        bool have = false;
        std::string bytes = detail::tree_file(repo, version, parts + n, &have);
        if (!have) return std::nullopt;
        return bytes;
      },
      [&](const bundle::DeltaBase& base, int base_depth) -> std::optional<std::string> {
        if (auto held = local.read(base.sha256, base.size)) return held;
        for (std::size_t i = 0; i < git_tree_entrycount(versions); ++i) {
          const git_tree_entry* e = git_tree_entry_byindex(versions, i);
          if (git_tree_entry_type(e) != GIT_OBJECT_TREE || git_oid_equal(git_tree_entry_id(e), git_tree_id(version)))
            continue;
          git_tree* raw = nullptr;
          detail::check_git(git_tree_lookup(&raw, repo, git_tree_entry_id(e)), "cannot read " + where);
          detail::Tree sibling(raw);
          if (auto b = hub_part(repo, versions, sibling.get(), file, base.sha256, base_depth, where, local)) return b;
        }
        return std::nullopt;
      });
}

void pull_git(const PullOptions& options, const HubLocation& loc, Pool& pool, PullResult& result) {
  if (!options.ca_file.empty()) detail::set_git_ca_file(options.ca_file.string());
  detail::Repository repo = detail::open_or_init_bare(options.pool_dir / ".gaggle" / "hub.git");
  detail::TransferState state;
  state.progress = options.progress;
  state.known_hosts = options.ssh_known_hosts;
  std::string url = loc.transport == HubTransport::local ? loc.path.string() : loc.url;
  git_oid tip = detail::fetch_main(repo.get(), url, "refs/remotes/hub/main", state);
  result.git_bytes = state.bytes;
  result.git_objects = state.objects;
  result.commit = detail::oid_hex(tip);
  detail::Tree root = detail::commit_tree(repo.get(), tip);

  Installer installer(options, pool, result);
  const git_tree_entry* experts_entry = git_tree_entry_byname(root.get(), "experts");
  if (!experts_entry || git_tree_entry_type(experts_entry) != GIT_OBJECT_TREE) return;  // an empty hub
  git_tree* experts_raw = nullptr;
  detail::check_git(git_tree_lookup(&experts_raw, repo.get(), git_tree_entry_id(experts_entry)), "cannot read experts/");
  detail::Tree experts(experts_raw);
  for (std::size_t i = 0; i < git_tree_entrycount(experts.get()); ++i) {
    const git_tree_entry* ne = git_tree_entry_byindex(experts.get(), i);
    if (git_tree_entry_type(ne) != GIT_OBJECT_TREE) continue;
    std::string name = git_tree_entry_name(ne);
    git_tree* name_raw = nullptr;
    detail::check_git(git_tree_lookup(&name_raw, repo.get(), git_tree_entry_id(ne)), "cannot read experts/" + name);
    auto versions = std::make_shared<detail::Tree>(name_raw);
    for (std::size_t k = 0; k < git_tree_entrycount(versions->get()); ++k) {
      const git_tree_entry* ve = git_tree_entry_byindex(versions->get(), k);
      if (git_tree_entry_type(ve) != GIT_OBJECT_TREE) continue;
      std::string version = git_tree_entry_name(ve);
      if (!wanted(options.only, name, version)) continue;
      git_tree* v_raw = nullptr;
      detail::check_git(git_tree_lookup(&v_raw, repo.get(), git_tree_entry_id(ve)),
                        "cannot read experts/" + name + "/" + version);
      auto vtree = std::make_shared<detail::Tree>(v_raw);
      Candidate c;
      c.name = name;
      c.version = version;
      bool found_manifest = false, found_sig = false;
      c.manifest_bytes = detail::tree_file(repo.get(), vtree->get(), std::string(bundle::kManifestFile), &found_manifest);
      c.signature_bytes = detail::tree_file(repo.get(), vtree->get(), std::string(bundle::kSignatureFile), &found_sig);
      if (!found_manifest || !found_sig) {
        result.bundles.push_back({name, version, "rejected",
                                  std::string("experts/") + name + "/" + version + " has no " +
                                      (found_manifest ? "manifest.json.sig (unsigned)" : "manifest.json"),
                                  ""});
        ++result.rejected;
        continue;
      }
      git_repository* r = repo.get();
      std::string where = "experts/" + name + "/" + version;
      detail::LocalParts* local = &installer.local_parts();
      c.inline_file = [r, versions, vtree, where, local](const bundle::FileEntry& e, std::string& out) {
        bool found = false;
        out = detail::tree_file(r, vtree->get(), e.path, &found);
        if (found || !e.tensors) return found;
        // Kept as its parts (bundle/tensor_index.h): each checked against its signed hash.
        // No parts either: the file lives in the blob store (its url).
        const std::string parts = e.path + std::string(bundle::kPartsSuffix) + "/";
        bool have_header = false;
        detail::tree_file(r, vtree->get(), parts + std::string(bundle::kHeaderPart), &have_header);
        if (!have_header && e.remote()) return false;
        const std::string label = where + "/" + e.path;
        out = bundle::join_parts(*e.tensors, e.size, e.sha256,
                                 [&](const std::string& part) {
                                   return hub_part(r, versions->get(), vtree->get(), e.path, part, 0, label, *local);
                                 },
                                 label);
        return true;
      };
      c.file_url = [where](const bundle::FileEntry& e) -> std::string {
        if (e.url.empty())
          throw Error(ErrorCode::not_found, "hub", where + "/" + e.path + " is neither in the hub nor at a URL");
        return e.url;
      };
      installer.offer(c, io::sha256_hex(c.manifest_bytes));
    }
  }
  installer.finish();
}

void pull_index(const PullOptions& options, const HubLocation& loc, Pool& pool, PullResult& result) {
  Installer installer(options, pool, result);
  // Ask "changed since?" with what the last pull saw; a 304 re-reads the kept copy.
  std::optional<detail::CachedIndex> cached = detail::load_cached_index(options.pool_dir, loc.url);
  ConditionalGet got = http_get_conditional(loc.url, cached ? cached->validators : HttpValidators{}, installer.http(),
                                            &result.http_bytes);
  std::string text;
  if (got.not_modified) {
    text = std::move(cached->body);
    result.index_not_modified = true;
  } else {
    text = std::move(got.body);
    result.index_bytes = text.size();
  }
  Pool index = parse_pool(text, loc.url);
  result.commit = io::sha256_hex(text);
  for (const auto& b : index.bundles) {
    if (!wanted(options.only, b.name, b.version)) continue;
    const PoolBundle* have = pool.find(b.name, b.version);
    std::error_code ec;
    if (have && have->manifest_sha256 == b.manifest_sha256 && fs::is_directory(options.pool_dir / have->path, ec)) {
      result.bundles.push_back({b.name, b.version, "unchanged", "", have->principal});
      ++result.unchanged;
      continue;
    }
    Candidate c;
    c.name = b.name;
    c.version = b.version;
    std::string base = url_resolve(loc.url, b.path + "/");
    try {
      c.manifest_bytes = http_get(base + std::string(bundle::kManifestFile), installer.http(), &result.http_bytes);
      c.signature_bytes = http_get(base + std::string(bundle::kSignatureFile), installer.http(), &result.http_bytes,
                                   kMaxSignatureBytes);
    } catch (const Error& e) {
      result.bundles.push_back({b.name, b.version, "rejected", e.what(), ""});
      ++result.rejected;
      continue;
    }
    c.file_url = [base](const bundle::FileEntry& e) { return e.url.empty() ? base + e.path : e.url; };
    installer.offer(c, io::sha256_hex(c.manifest_bytes));
  }
  installer.finish();
  if (!got.not_modified || got.validators.etag != cached->validators.etag ||
      got.validators.last_modified != cached->validators.last_modified)
    detail::save_cached_index(options.pool_dir, loc.url, got.validators, text);
}

}  // namespace

PullResult pull_pool(const PullOptions& options) {
  if (options.pool_dir.empty()) throw Error(ErrorCode::usage, "hub", "no pool directory", "pass --pool DIR");
  std::error_code ec;
  if (options.trust_file.empty() || !fs::is_regular_file(options.trust_file, ec))
    throw Error(ErrorCode::usage, "hub",
                options.trust_file.empty() ? "pull needs a trust file"
                                           : "trust file '" + options.trust_file.string() + "' does not exist",
                "pass --trust ALLOWED_SIGNERS: the keys whose bundles you accept (OpenSSH format)");
  HubLocation loc = parse_hub_location(options.hub);
  fs::create_directories(options.pool_dir / ".gaggle");
  detail::FileLock lock(options.pool_dir / ".gaggle" / "lock");
  io::remove_stale_temporaries(options.pool_dir);

  Pool pool;
  if (fs::exists(options.pool_dir / "pool.json", ec)) pool = read_pool(options.pool_dir);
  PullResult result;
  result.hub = options.hub;
  if (loc.transport == HubTransport::static_index)
    pull_index(options, loc, pool, result);
  else
    pull_git(options, loc, pool, result);

  pool.format_version = kPoolFormatVersion;
  pool.hub = options.hub;
  pool.commit = result.commit;
  pool.updated = utc_now();
  // The trust these bundles were verified against: every verb that loads the pool
  // verifies against it unless told otherwise (hub/pool_trust.h).
  io::write_file_atomic(options.pool_dir / kPoolTrustFile, io::read_file(options.trust_file));
  write_pool(options.pool_dir, pool);  // last: the pool changes here, atomically
  return result;
}

}  // namespace gaggle::hub
