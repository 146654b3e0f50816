#include "hub/hub.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "hub/detail/git.h"
#include "io/atomic_file.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

std::string hub_readme(const std::string& title) {
  return "# " + title +
         "\n\n"
         "A gaggle hub: a git repository of signed PHATGOOSE expert bundles.\n\n"
         "- `experts/<name>/<version>/` holds `manifest.json`, `manifest.json.sig` and, below the\n"
         "  blob threshold, `adapter.safetensors`. Larger adapters live in an HTTP blob store\n"
         "  addressed by sha256; the manifest records where.\n"
         "- Versions are immutable: the server's pre-receive hook rejects unsigned, untrusted or\n"
         "  malformed bundles and any change to a published version.\n\n"
         "Publish:  `gaggle publish BUNDLE_DIR --hub URL --key ~/.ssh/id_ed25519`\n"
         "Pull:     `gaggle pull --hub URL --pool DIR --trust allowed_signers`\n";
}

}  // namespace

std::string bundle_tree_path(const std::string& name, const std::string& version) {
  return "experts/" + name + "/" + version;
}

const char* transport_name(HubTransport t) {
  switch (t) {
    case HubTransport::local: return "local";
    case HubTransport::git: return "git";
    case HubTransport::http: return "http";
    case HubTransport::ssh: return "ssh";
    case HubTransport::static_index: return "static-index";
  }
  return "?";
}

HubLocation parse_hub_location(const std::string& hub) {
  if (hub.empty()) throw Error(ErrorCode::usage, "hub", "empty hub URL", "pass --hub PATH or URL");
  HubLocation loc;
  loc.url = hub;
  auto starts = [&](const char* p) { return hub.rfind(p, 0) == 0; };
  if (starts("file://")) {
    loc.transport = HubTransport::local;
    loc.path = hub.substr(7);
    loc.url = loc.path.string();
  } else if (starts("git://")) {
    loc.transport = HubTransport::git;
  } else if (starts("http://") || starts("https://")) {
    std::string p = hub;
    if (auto q = p.find('?'); q != std::string::npos) p.resize(q);
    bool index = p.size() >= 9 && p.compare(p.size() - 9, 9, "pool.json") == 0;
    loc.transport = index ? HubTransport::static_index : HubTransport::http;
  } else if (starts("ssh://")) {
    loc.transport = HubTransport::ssh;
  } else if (hub.find("://") != std::string::npos) {
    throw Error(ErrorCode::usage, "hub", "unsupported hub URL '" + hub + "'",
                "use a path, file://, git://, http(s):// (git or .../pool.json) or ssh://");
  } else if (auto colon = hub.find(':'); colon != std::string::npos && hub.find('/') > colon && colon > 0) {
    loc.transport = HubTransport::ssh;  // scp-like user@host:path
  } else {
    loc.transport = HubTransport::local;
    loc.path = hub;
  }
  if (loc.transport == HubTransport::local) loc.path = fs::absolute(loc.path).lexically_normal();
  return loc;
}

void init_hub(const fs::path& path, const HubInitOptions& options) {
  detail::ensure_libgit2();
  std::error_code ec;
  if (fs::exists(path, ec) && !(fs::is_directory(path, ec) && fs::is_empty(path, ec)))
    throw Error(ErrorCode::exists, "hub", "'" + path.string() + "' already exists",
                "choose a new path; 'hub init' never touches an existing repository");
  if (!options.trust_file.empty() && !fs::is_regular_file(options.trust_file, ec))
    throw Error(ErrorCode::not_found, "hub", "trust file '" + options.trust_file.string() + "' does not exist",
                "pass an allowed-signers file (OpenSSH format), or leave --trust out and add one later");
  if (fs::exists(path, ec)) fs::remove(path, ec);  // an empty directory: replaced by the built one
  fs::path parent = fs::absolute(path).parent_path();
  fs::create_directories(parent, ec);

  io::AtomicDirectory staging(fs::absolute(path));
  git_repository_init_options init_opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  init_opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
  init_opts.initial_head = "main";
  init_opts.description = options.title.c_str();
  git_repository* raw = nullptr;
  detail::check_git(git_repository_init_ext(&raw, staging.path().c_str(), &init_opts),
                    "cannot create hub repository '" + path.string() + "'");
  detail::Repository repo(raw);

  // The initial commit: README.md, hub.json, experts/README.md.
  nlohmann::ordered_json hub_json = {{"format_version", 1}, {"kind", "gaggle-hub"}, {"layout", "experts/<name>/<version>/"}};
  struct File {
    const char* path;
    std::string content;
  };
  File files[] = {
      {"README.md", hub_readme(options.title)},
      {"hub.json", hub_json.dump(2) + "\n"},
      {"experts/README.md", "Published experts: one folder per name, one sub-folder per immutable version.\n"},
  };
  std::vector<git_tree_update> updates;
  std::vector<git_oid> oids(std::size(files));
  for (std::size_t i = 0; i < std::size(files); ++i) {
    detail::check_git(git_blob_create_from_buffer(&oids[i], repo.get(), files[i].content.data(), files[i].content.size()),
                      "cannot write hub file");
    git_tree_update u{};
    u.action = GIT_TREE_UPDATE_UPSERT;
    u.id = oids[i];
    u.filemode = GIT_FILEMODE_BLOB;
    u.path = files[i].path;
    updates.push_back(u);
  }
  git_oid empty_tree_oid, tree_oid, commit_oid;
  {
    git_treebuilder* tb = nullptr;
    detail::check_git(git_treebuilder_new(&tb, repo.get(), nullptr), "cannot build hub tree");
    int rc = git_treebuilder_write(&empty_tree_oid, tb);
    git_treebuilder_free(tb);
    detail::check_git(rc, "cannot build hub tree");
  }
  git_tree* empty_raw = nullptr;
  detail::check_git(git_tree_lookup(&empty_raw, repo.get(), &empty_tree_oid), "cannot build hub tree");
  detail::Tree empty_tree(empty_raw);
  detail::check_git(git_tree_create_updated(&tree_oid, repo.get(), empty_tree.get(), updates.size(), updates.data()),
                    "cannot build hub tree");
  git_tree* tree_raw = nullptr;
  detail::check_git(git_tree_lookup(&tree_raw, repo.get(), &tree_oid), "cannot build hub tree");
  detail::Tree tree(tree_raw);
  git_signature* sig_raw = nullptr;
  detail::check_git(git_signature_now(&sig_raw, "gaggle hub init", "gaggle@localhost"), "cannot make a commit signature");
  detail::Signature sig(sig_raw);
  detail::check_git(git_commit_create(&commit_oid, repo.get(), "refs/heads/main", sig.get(), sig.get(), nullptr,
                                      "Create gaggle hub", tree.get(), 0, nullptr),
                    "cannot write the hub's first commit");

  // Server-side configuration: immutable history, pushes over smart HTTP and git daemon.
  git_config* cfg_raw = nullptr;
  detail::check_git(git_repository_config(&cfg_raw, repo.get()), "cannot open hub config");
  detail::Config cfg(cfg_raw);
  detail::check_git(git_config_set_bool(cfg.get(), "receive.denyDeletes", 1), "cannot write hub config");
  detail::check_git(git_config_set_bool(cfg.get(), "receive.denyNonFastForwards", 1), "cannot write hub config");
  detail::check_git(git_config_set_bool(cfg.get(), "http.receivepack", 1), "cannot write hub config");
  // Fetches send only objects the puller lacks, wherever they sit in the tree. git's
  // sparse walk (its default since 2.27) compares trees path by path, so the tensor parts
  // a new version shares with an old one (bundle/tensor_index.h), being under a new
  // experts/<name>/<version>/ path, would be sent again. The full walk finds them.
  detail::check_git(git_config_set_bool(cfg.get(), "pack.useSparse", 0), "cannot write hub config");
  detail::check_git(git_config_set_string(cfg.get(), "gaggle.trust", "allowed_signers"), "cannot write hub config");
  if (!options.gaggle_binary.empty())
    detail::check_git(git_config_set_string(cfg.get(), "gaggle.binary", options.gaggle_binary.c_str()),
                      "cannot write hub config");
  cfg.reset();
  repo.reset();

  io::write_file_atomic(staging.path() / "git-daemon-export-ok", std::string_view{});
  fs::create_directories(staging.path() / "hooks");
  io::write_file_atomic(staging.path() / "hooks" / "pre-receive", pre_receive_hook_script(), 0755);
  if (!options.trust_file.empty())
    io::write_file_atomic(staging.path() / "allowed_signers", io::read_file(options.trust_file));
  staging.commit();
}

void set_hub_trust(const fs::path& hub_path, const fs::path& trust_file) {
  std::error_code ec;
  if (!fs::is_directory(hub_path / "objects", ec))
    throw Error(ErrorCode::not_found, "hub", "'" + hub_path.string() + "' is not a bare hub repository",
                "pass the directory 'gaggle hub init' created");
  io::write_file_atomic(hub_path / "allowed_signers", io::read_file(trust_file));
  // The hook of this gaggle: hubs made by an older one learn what it accepts since (deltas).
  fs::create_directories(hub_path / "hooks");
  io::write_file_atomic(hub_path / "hooks" / "pre-receive", pre_receive_hook_script(), 0755);
}

}  // namespace gaggle::hub
