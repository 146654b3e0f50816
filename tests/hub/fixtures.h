#pragma once
// Keys, trust files, bundles and hubs for the hub tests, made with the built gaggle
// (keygen, debug make-bundle, sign, hub init) exactly as a user would.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace gaggle::test::hub {

namespace fs = std::filesystem;

struct Signer {
  std::string name;
  fs::path key;
  std::string trust_line;  // name namespaces="gaggle-bundle" ssh-ed25519 AAAA...
};

inline Signer make_signer(const fs::path& dir, const std::string& name) {
  Signer s{name, dir / (name + ".key"), ""};
  auto r = run_gaggle({"keygen", "-f", s.key.string(), "-C", name});
  REQUIRE(r.exit_code == 0);
  std::string pub = read_text(fs::path(s.key.string() + ".pub"));
  auto second_space = pub.find(' ', pub.find(' ') + 1);
  s.trust_line = name + " namespaces=\"gaggle-bundle\" " + pub.substr(0, second_space) + "\n";
  return s;
}

inline fs::path write_trust(const fs::path& path, const std::vector<Signer>& signers) {
  std::string text;
  for (const auto& s : signers) text += s.trust_line;
  write_text(path, text);
  return path;
}

inline fs::path make_bundle(const fs::path& out, const std::string& name, const std::string& version, int seed = 1) {
  auto r = run_gaggle({"debug", "make-bundle", "--out", out.string(), "--name", name, "--version", version, "--seed",
                       std::to_string(seed)});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return out;
}

inline fs::path make_signed_bundle(const fs::path& out, const std::string& name, const std::string& version,
                                   const Signer& signer, int seed = 1) {
  make_bundle(out, name, version, seed);
  auto r = run_gaggle({"sign", out.string(), "--key", signer.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return out;
}

inline fs::path make_hub(const fs::path& path, const fs::path& trust) {
  auto r = run_gaggle({"hub", "init", path.string(), "--trust", trust.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return path;
}

// A command's --json output; fails the test, showing both streams, when there is none.
inline nlohmann::json json_of(const CommandResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(!r.out.empty());
  return nlohmann::json::parse(r.out);
}

}  // namespace gaggle::test::hub

// In-process variants (no gaggle process start-up) for tests that need many bundles.
#include "bundle/demo_bundle.h"
#include "bundle/keys.h"
#include "bundle/sign.h"
#include "hub/publish.h"

namespace gaggle::test::hub {

inline Signer make_signer_inproc(const fs::path& dir, const std::string& name) {
  Signer s{name, dir / (name + ".key"), ""};
  auto pub = gaggle::bundle::generate_ed25519_keypair(s.key, name);
  pub.comment.clear();
  s.trust_line = name + " namespaces=\"gaggle-bundle\" " + pub.to_openssh() + "\n";
  return s;
}

inline fs::path make_signed_bundle_inproc(const fs::path& out, const std::string& name, const std::string& version,
                                          const Signer& signer, std::uint64_t seed = 1) {
  gaggle::bundle::DemoBundleOptions o;
  o.name = name;
  o.version = version;
  o.seed = seed;
  gaggle::bundle::make_demo_bundle(out, o);
  gaggle::bundle::sign_bundle(out, gaggle::bundle::SignOptions{signer.key});
  return out;
}

// n bundles b000..b<n-1>@1.0.0 signed by `signer`, published to `hub` in-process.
inline void publish_many(const fs::path& work, const std::string& hub, const Signer& signer, const fs::path& trust, int n) {
  for (int i = 0; i < n; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "b%03d", i);
    fs::path b = make_signed_bundle_inproc(work / name, name, "1.0.0", signer, static_cast<std::uint64_t>(i + 1));
    gaggle::hub::PublishOptions o;
    o.hub = hub;
    o.trust_file = trust;
    o.cache_dir = work / "cache";
    gaggle::hub::publish_bundle(b, o);
  }
}

}  // namespace gaggle::test::hub

#include "hub/servers.h"

namespace gaggle::test::hub {

// A hub that trusts alice, and a WebDAV blob store (nginx) whose files are in dir/dav.
struct BlobStoreHub {
  TempDir dir;
  Signer alice = make_signer(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "hub.git", trust);
  Nginx nginx{dir / "nginx", [this] {
                NginxOptions o;
                o.dav_root = dir / "dav";
                return o;
              }()};
  std::string store = nginx.base() + "/blobs/";
};

// A hub that trusts alice, served over smart HTTP(S) by nginx + fcgiwrap + git
// http-backend at url().
struct SmartHttpHub {
  explicit SmartHttpHub(bool tls = false)
      : nginx(dir / "nginx", [&] {
          NginxOptions o;
          o.git_root = dir / "srv";
          o.tls = tls;
          return o;
        }()) {}
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::path hub = make_hub(dir / "srv" / "hub.git", trust);
  Nginx nginx;
  std::string url() const { return nginx.base() + "/git/hub.git"; }
};

// True (and a skip warning) when nginx is missing: no HTTP server, blob store or static
// index can run.
inline bool nginx_missing() {
  if (have_program("/usr/sbin/nginx")) return false;
  WARN("GAGGLE-TEST-SKIPPED: nginx missing (scripts/packages.txt)");
  return true;
}

// True (and a skip warning) when nginx or fcgiwrap is missing: smart HTTP cannot run.
inline bool smart_http_missing() {
  if (have_program("/usr/sbin/nginx") && have_program("/usr/sbin/fcgiwrap")) return false;
  WARN("GAGGLE-TEST-SKIPPED: nginx or fcgiwrap missing (scripts/packages.txt)");
  return true;
}

}  // namespace gaggle::test::hub
