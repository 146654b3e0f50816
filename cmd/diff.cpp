// gaggle diff — what changed between two versions of an expert, tensor by tensor
// (lib/bundle/diff.h): two bundle directories, two NAME@VERSION of a pool, or two
// NAME@VERSION of a hub (pulled and verified into a scratch pool first).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bundle/diff.h"
#include "hub/detail/staging.h"
#include "hub/pool.h"
#include "hub/pool_trust.h"
#include "hub/pull.h"
#include "hub_progress.h"
#include "io/error.h"
#include "io/terminal_text.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace gaggle::cli {
namespace {

struct DiffFlags {
  std::string from, to, pool, hub, trust, ca_file, known_hosts;
  bool json = false, all = false;
};

std::pair<std::string, std::string> name_version(const std::string& text) {
  auto at = text.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == text.size())
    throw Error(ErrorCode::usage, "cli", "'" + text + "' is not NAME@VERSION", "e.g. gaggle diff sst2@1.0.0 sst2@1.1.0 --pool pool");
  return {text.substr(0, at), text.substr(at + 1)};
}

fs::path in_pool(const fs::path& pool_dir, const std::string& text) {
  auto [name, version] = name_version(text);
  hub::Pool pool = hub::read_pool(pool_dir);
  const hub::PoolBundle* b = pool.find(name, version);
  if (!b)
    throw Error(ErrorCode::not_found, "cli", "pool '" + pool_dir.string() + "' holds no " + text,
                "see what it holds with: gaggle pool list --pool " + pool_dir.string());
  return pool_dir / b->path;
}

std::string human_shape(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

Runner setup_diff(CLI::App& sub) {
  auto f = std::make_shared<DiffFlags>();
  sub.add_option("from", f->from, "The older version: a bundle directory, or NAME@VERSION with --pool or --hub")->required();
  sub.add_option("to", f->to, "The newer version: likewise")->required();
  sub.add_option("--pool", f->pool, "Read NAME@VERSION from this pool");
  sub.add_option("--hub", f->hub, "Read NAME@VERSION from this hub (pulled and verified first; needs --trust)");
  sub.add_option("--trust", f->trust,
                 "Allowed-signers file: needed with --hub; with --pool, default: the one the pool was pulled with");
  sub.add_option("--ca-file", f->ca_file, "PEM file of a private CA for https hubs");
  sub.add_option("--ssh-known-hosts", f->known_hosts, "ssh:// hubs: the known_hosts file to trust alone");
  sub.add_flag("--all", f->all, "List unchanged tensors too");
  sub.add_flag("--json", f->json, "Print the comparison as JSON");
  set_example(sub,
              "  gaggle diff experts/sst2-v1 experts/sst2-v2\n"
              "  gaggle diff sst2@1.0.0 sst2@1.1.0 --pool pool --json\n"
              "  gaggle diff sst2@1.0.0 sst2@1.1.0 --hub https://hub.example/git/hub.git --trust allowed_signers");
  return [f]() -> int {
    if (!f->pool.empty() && !f->hub.empty()) throw Error(ErrorCode::usage, "cli", "give --pool or --hub, not both");
    fs::path a = f->from, b = f->to;
    std::optional<hub::detail::ScratchDir> scratch;
    if (!f->hub.empty()) {
      if (f->trust.empty())
        throw Error(ErrorCode::usage, "cli", "--hub needs --trust ALLOWED_SIGNERS: bundles are verified before they are compared");
      scratch.emplace("gaggle-diff");
      hub::PullOptions o;
      o.hub = f->hub;
      o.pool_dir = scratch->path() / "pool";
      o.trust_file = f->trust;
      o.ca_file = f->ca_file;
      o.ssh_known_hosts = f->known_hosts;
      o.only = {f->from, f->to};
      auto r = hub::pull_pool(o);
      for (const auto& pb : r.bundles)
        if (pb.status == "rejected")
          throw Error(ErrorCode::auth, "cli", pb.name + "@" + pb.version + " on hub '" + f->hub + "' does not verify: " + pb.reason);
      a = in_pool(o.pool_dir, f->from);
      b = in_pool(o.pool_dir, f->to);
    } else if (!f->pool.empty()) {
      a = in_pool(f->pool, f->from);
      b = in_pool(f->pool, f->to);
      hub::verify_pool(f->pool, f->trust, {a, b});  // like every verb that loads a pool
    }
    auto d = bundle::diff_bundles(a, b);
    if (f->json) {
      std::cout << d.to_json(f->all).dump(2) << "\n";
      return kExitSuccess;
    }
    std::printf("%s -> %s: %d unchanged, %d changed, %d added, %d removed (%s of %s new)\n", d.from.c_str(), d.to.c_str(),
                d.unchanged, d.changed, d.added, d.removed, human_bytes(d.changed_bytes).c_str(),
                human_bytes(d.total_bytes).c_str());
    for (const auto& file : d.files) {
      if (!file.has_tensors) {
        if (file.change != bundle::Change::unchanged || f->all)
          std::printf("  %-9s %s\n", bundle::change_name(file.change), io::terminal_safe(file.path).c_str());
        continue;
      }
      for (const auto& t : file.tensors) {
        if (t.change == bundle::Change::unchanged && !f->all) continue;
        const auto& shape = t.change == bundle::Change::removed ? t.old_shape : t.shape;
        const auto& dtype = t.change == bundle::Change::removed ? t.old_dtype : t.dtype;
        // File and tensor names are the publishers' (io/terminal_text.h).
        std::printf("  %-9s %s:%s %s %s", bundle::change_name(t.change), io::terminal_safe(file.path).c_str(),
                    io::terminal_safe(t.name).c_str(), dtype.c_str(), human_shape(shape).c_str());
        if (t.change == bundle::Change::changed && (t.old_shape != t.shape || t.old_dtype != t.dtype))
          std::printf(" (was %s %s)", t.old_dtype.c_str(), human_shape(t.old_shape).c_str());
        if (t.diff_norm) std::printf("  |diff| %.4g", *t.diff_norm);
        if (t.relative_change) std::printf("  relative %.4g", *t.relative_change);
        std::printf("\n");
      }
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
