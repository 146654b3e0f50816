// Figures for the closing note (not a test: hidden, never asserts timings):
// time and bytes to pull a pool of 100 small bundles over each transport (path, file://,
// git://, smart HTTP, ssh://, static index over HTTP and HTTPS), and for a second pull
// that finds nothing new. Run:  build/tests/gaggle_test_hub "[figures]"
// (GAGGLE_FIGURES_BUNDLES=1000 for a pool of 1,000 bundles).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "hub/fixtures.h"
#include "hub/servers.h"
#include "support/test_support.h"

using namespace gaggle::test;
using namespace gaggle::test::hub;

TEST_CASE("pull figures: 100 small bundles over every transport", "[.][hub][figures]") {
  TempDir dir;
  Signer alice = make_signer_inproc(dir.path(), "alice");
  fs::path trust = write_trust(dir / "trust", {alice});
  fs::create_directories(dir / "srv");
  fs::path hub = make_hub(dir / "srv" / "hub.git", trust);
  const char* env_n = std::getenv("GAGGLE_FIGURES_BUNDLES");
  const int n = env_n ? std::atoi(env_n) : 100;
  REQUIRE(n > 0);
  auto t0 = std::chrono::steady_clock::now();
  publish_many(dir / "work", hub.string(), alice, trust, n);
  double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  GitDaemon daemon(dir / "srv");
  NginxOptions http_opts;
  http_opts.git_root = dir / "srv";
  http_opts.static_root = dir / "www";
  Nginx http(dir / "nginx-http", http_opts);

  struct Row {
    std::string transport, url;
    std::vector<std::string> extra;
  };
  std::vector<Row> rows = {{"path", hub.string(), {}},
                           {"file://", "file://" + hub.string(), {}},
                           {"git:// (git daemon)", daemon.url("hub.git"), {}},
                           {"smart HTTP (nginx+fcgiwrap)", http.base() + "/git/hub.git", {}}};
  auto pull = [&](const Row& row, const fs::path& pool) {
    std::vector<std::string> args{"pull", "--hub", row.url, "--pool", pool.string(), "--trust", trust.string(), "--json"};
    args.insert(args.end(), row.extra.begin(), row.extra.end());
    auto start = std::chrono::steady_clock::now();
    auto r = run_gaggle(args);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    return std::tuple{s, j["git_bytes"].get<std::uint64_t>() + j["http_bytes"].get<std::uint64_t>(), j["installed"].get<int>()};
  };
  std::string table = "| transport | first pull: s | bytes | installed | second pull: s | bytes |\n|---|---|---|---|---|---|\n";
  int i = 0;
  auto measure = [&](const Row& row, const fs::path& pool) {
    auto [s1, b1, n1] = pull(row, pool);
    auto [s2, b2, n2] = pull(row, pool);
    CHECK(n1 == n);
    CHECK(n2 == 0);
    char line[256];
    std::snprintf(line, sizeof line, "| %s | %.2f | %llu | %d | %.2f | %llu |\n", row.transport.c_str(), s1,
                  static_cast<unsigned long long>(b1), n1, s2, static_cast<unsigned long long>(b2));
    table += line;
  };
  for (const auto& row : rows) measure(row, dir / ("pool" + std::to_string(i++)));
  // ssh:// to a real sshd, the login key in a real ssh-agent. Each ssh session also runs
  // the user's shell start-up on the server (root's ~/.bashrc here): printed below.
  if (Sshd::available()) {
    Sshd sshd(dir / "sshd");
    ssh_keygen(dir / "login", "figures");
    sshd.authorize(dir / "login.pub");
    SshAgent agent(dir / "agent.sock");
    agent.add(dir / "login");
    write_text(dir / "known_hosts", sshd.known_hosts_line());
    ::setenv("SSH_AUTH_SOCK", agent.socket().c_str(), 1);
    ::setenv("GAGGLE_SSH_KNOWN_HOSTS", (dir / "known_hosts").c_str(), 1);
    measure({"ssh:// (sshd, ssh-agent)", sshd.url(hub), {}}, dir / "pool-ssh");
    auto start = std::chrono::steady_clock::now();
    auto session = run_command({"ssh", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + (dir / "known_hosts").string(),
                                "-p", std::to_string(sshd.port()), current_user() + "@127.0.0.1", "true"});
    double session_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("one ssh session running 'true' (OpenSSH client, same server): %.2f s (exit %d)\n", session_s,
                session.exit_code);
    ::unsetenv("SSH_AUTH_SOCK");
    ::unsetenv("GAGGLE_SSH_KNOWN_HOSTS");
  } else {
    WARN("sshd or ssh-agent missing: no ssh:// row");
  }
  // A static index: the first pool, served by nginx as plain files (HTTP, then HTTPS).
  fs::create_directories(dir / "www");
  fs::create_directory_symlink(dir / "pool0", dir / "www" / "pool");
  measure({"static index, HTTP", http.base() + "/static/pool/pool.json", {}}, dir / "pool-static");
  NginxOptions tls_opts;
  tls_opts.static_root = dir / "www";
  tls_opts.tls = true;
  Nginx https(dir / "nginx-https", tls_opts);
  measure({"static index, HTTPS (private CA)", https.base() + "/static/pool/pool.json", {"--ca-file", https.ca_file().string()}},
          dir / "pool-static-tls");
  std::printf("\npublished %d bundles in-process in %.1f s\n%s\n", n, publish_s, table.c_str());
}
