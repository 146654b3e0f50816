#pragma once
// Real servers for the hub tests, on free loopback ports in temporary directories:
// git daemon (git://), nginx + fcgiwrap + git http-backend (smart HTTP), nginx WebDAV
// (the PUT blob store), nginx serving files over HTTP or HTTPS (static pool indexes,
// with a private CA made by openssl), OpenSSH's sshd (ssh://, logging in as the current
// user) and ssh-agent. Each is stopped by its destructor — also when a REQUIRE fails —
// and dies with the test process (PR_SET_PDEATHSIG).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace gaggle::test::hub {

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// An htpasswd line (apr1 hash, made by openssl) for nginx basic auth.
inline std::string htpasswd_line(const std::string& user, const std::string& password) {
  auto r = run_command({"openssl", "passwd", "-apr1", password});
  if (r.exit_code != 0) throw std::runtime_error("openssl passwd failed: " + r.err);
  return user + ":" + r.out;
}

inline bool have_program(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// A background process, SIGTERM'ed and reaped on destruction.
class Process {
 public:
  Process() = default;
  explicit Process(const std::vector<std::string>& argv, const std::filesystem::path& log = {}) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);
      if (!log.empty()) {
        FILE* f = std::fopen(log.c_str(), "a");
        if (f) {
          ::dup2(fileno(f), 1);
          ::dup2(fileno(f), 2);
        }
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      _exit(127);
    }
  }
  Process(Process&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Process& operator=(Process&& o) noexcept {
    stop();
    pid_ = o.pid_;
    o.pid_ = -1;
    return *this;
  }
  ~Process() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);  // the whole group: git daemon's and nginx's children too
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ::kill(-pid_, SIGKILL);  // leftovers of the group
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

inline void wait_for_port(int port, const std::string& what) {
  for (int i = 0; i < 200; ++i) {
    if (port_open(port)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error(what + " did not start on port " + std::to_string(port));
}

// git daemon serving every repository under `base` (push enabled).
class GitDaemon {
 public:
  explicit GitDaemon(const std::filesystem::path& base) : port_(free_port()) {
    process_ = Process({"git", "daemon", "--reuseaddr", "--listen=127.0.0.1", "--port=" + std::to_string(port_),
                        "--base-path=" + base.string(), "--export-all", "--enable=receive-pack", base.string()},
                       base.parent_path() / ("git-daemon-" + std::to_string(port_) + ".log"));
    wait_for_port(port_, "git daemon");
  }
  std::string url(const std::string& repo) const { return "git://127.0.0.1:" + std::to_string(port_) + "/" + repo; }

 private:
  int port_;
  Process process_;
};

struct NginxOptions {
  std::filesystem::path git_root;     // non-empty: smart HTTP at /git/<repo> (fcgiwrap + git http-backend)
  std::filesystem::path dav_root;     // non-empty: WebDAV PUT/GET at /blobs/
  std::filesystem::path static_root;  // non-empty: files at /static/
  bool tls = false;                   // HTTPS with a certificate from a private CA (ca_file())
  std::filesystem::path htpasswd;     // non-empty: HTTP basic auth on everything
  bool ignore_conditionals = false;   // no ETag, If-Modified-Since ignored: every GET is a 200
  bool ignore_ranges = false;         // Range ignored: every GET is the whole file (200)
};

// nginx (and fcgiwrap when serving git) in `dir`.
class Nginx {
 public:
  Nginx(const std::filesystem::path& dir, const NginxOptions& o) : dir_(dir), port_(free_port()), tls_(o.tls) {
    namespace fs = std::filesystem;
    fs::create_directories(dir_ / "tmp");
    std::string conf;
    conf += ::geteuid() == 0 ? "user root;\n" : "";
    conf += "daemon off;\nworker_processes 2;\npid " + (dir_ / "nginx.pid").string() + ";\nerror_log " +
            (dir_ / "error.log").string() + " warn;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n";
    for (const char* t : {"client_body", "fastcgi", "proxy", "uwsgi", "scgi"})
      conf += std::string("  ") + t + "_temp_path " + (dir_ / "tmp" / t).string() + ";\n";
    if (o.ignore_conditionals) conf += "  etag off;\n  if_modified_since off;\n";
    if (o.ignore_ranges) conf += "  max_ranges 0;\n";
    conf += "  client_max_body_size 0;\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) + (tls_ ? " ssl" : "") + ";\n";
    if (tls_) {
      make_certificates();
      conf += "    ssl_certificate " + (dir_ / "server.pem").string() + ";\n    ssl_certificate_key " +
              (dir_ / "server.key").string() + ";\n";
    }
    if (!o.htpasswd.empty())
      conf += "    auth_basic \"gaggle test\";\n    auth_basic_user_file " + o.htpasswd.string() + ";\n";
    if (!o.git_root.empty()) {
      std::string sock = (dir_ / "fcgiwrap.sock").string();
      fcgiwrap_ = Process({"fcgiwrap", "-c", "8", "-s", "unix:" + sock}, dir_ / "fcgiwrap.log");
      for (int i = 0; i < 200 && !fs::exists(sock); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
      conf += "    location ~ ^/git(/.*)$ {\n      fastcgi_pass unix:" + sock + ";\n"
              "      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n"
              "      fastcgi_param GIT_PROJECT_ROOT " + o.git_root.string() + ";\n"
              "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n"
              "      fastcgi_param PATH_INFO $1;\n"
              "      fastcgi_param QUERY_STRING $query_string;\n"
              "      fastcgi_param REQUEST_METHOD $request_method;\n"
              "      fastcgi_param CONTENT_TYPE $content_type;\n"
              "      fastcgi_param CONTENT_LENGTH $content_length;\n"
              "      fastcgi_param REMOTE_ADDR $remote_addr;\n"
              "      fastcgi_param REMOTE_USER $remote_user;\n"
              "      fastcgi_param SERVER_PROTOCOL $server_protocol;\n"
              "      fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n"
              "      fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;\n"
              "      fastcgi_param GIT_CONFIG_NOSYSTEM 1;\n"
              "      fastcgi_read_timeout 300;\n"
              "      fastcgi_request_buffering off;\n"
              "    }\n";
    }
    if (!o.dav_root.empty()) {
      fs::create_directories(o.dav_root);
      conf += "    location /blobs/ {\n      alias " + o.dav_root.string() + "/;\n      dav_methods PUT;\n"
              "      create_full_put_path on;\n      dav_access user:rw group:r all:r;\n    }\n";
    }
    if (!o.static_root.empty()) conf += "    location /static/ {\n      alias " + o.static_root.string() + "/;\n    }\n";
    conf += "  }\n}\n";
    write_text(dir_ / "nginx.conf", conf);
    nginx_ = Process({"nginx", "-c", (dir_ / "nginx.conf").string(), "-p", dir_.string(), "-e", (dir_ / "error.log").string()},
                     dir_ / "nginx.out");
    wait_for_port(port_, "nginx");
  }
  ~Nginx() {
    nginx_.stop();
    fcgiwrap_.stop();
  }
  std::string base() const { return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path ca_file() const { return dir_ / "ca.pem"; }
  std::string error_log() const {
    std::error_code ec;
    return std::filesystem::exists(dir_ / "error.log", ec) ? read_text(dir_ / "error.log") : "";
  }

 private:
  // The DNS:127.0.0.1 name is for libgit2's mbedTLS backend, which matches host names
  // against DNS names only (OpenSSL and curl use the IP entry).
  void make_certificates() {
    auto run = [](const std::vector<std::string>& argv) {
      auto r = run_command(argv);
      if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.err);
    };
    std::string d = dir_.string();
    write_text(dir_ / "ext.cnf",
               "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj", "/CN=gaggle test CA"});
    run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1"});
    run({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
         "-CAcreateserial", "-out", d + "/server.pem", "-days", "2", "-extfile", d + "/ext.cnf"});
  }

  std::filesystem::path dir_;
  int port_;
  bool tls_;
  Process fcgiwrap_;
  Process nginx_;
};

inline void wait_for_file(const std::filesystem::path& path, const std::string& what) {
  for (int i = 0; i < 200; ++i) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error(what + " did not create " + path.string());
}

inline std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  if (!pw) throw std::runtime_error("cannot find the current user's name");
  return pw->pw_name;
}

// An ed25519 key pair made by ssh-keygen (KEY and KEY.pub, no passphrase).
inline void ssh_keygen(const std::filesystem::path& key, const std::string& comment) {
  auto r = run_command({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key.string()});
  if (r.exit_code != 0) throw std::runtime_error("ssh-keygen failed: " + r.err);
}

// "type base64" of an OpenSSH public key file (comment dropped).
inline std::string ssh_public_key(const std::filesystem::path& pub) {
  std::string text = read_text(pub);
  auto second_space = text.find(' ', text.find(' ') + 1);
  return text.substr(0, second_space == std::string::npos ? text.find('\n') : second_space);
}

// OpenSSH's sshd in `dir`, listening on 127.0.0.1 only, with its own host key and an
// authorized_keys file the test fills (authorize()); users log in as the current user
// (as root, too: PermitRootLogin prohibit-password). Keys only: no passwords, no PAM.
// The remote git commands run through the user's login shell and its PATH.
class Sshd {
 public:
  static bool available() { return have_program("/usr/sbin/sshd") && have_program("/usr/bin/ssh-agent"); }

  explicit Sshd(const std::filesystem::path& dir) : dir_(dir), port_(free_port()), user_(current_user()) {
    namespace fs = std::filesystem;
    fs::create_directories(dir_);
    ssh_keygen(dir_ / "host_ed25519", "gaggle test sshd");
    write_text(dir_ / "authorized_keys", "");
    // As root, sshd's privilege separation needs its empty directory (Debian makes it at boot).
    if (::geteuid() == 0) {
      std::error_code ec;
      fs::create_directories("/run/sshd", ec);
      ::chmod("/run/sshd", 0755);
    }
    std::string d = dir_.string();
    write_text(dir_ / "sshd_config", "ListenAddress 127.0.0.1\nPort " + std::to_string(port_) + "\nHostKey " + d +
                                         "/host_ed25519\nAuthorizedKeysFile " + d + "/authorized_keys\nPidFile " + d +
                                         "/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                                         "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
                                         "PrintMotd no\nPrintLastLog no\nAllowTcpForwarding no\nX11Forwarding no\n"
                                         "AllowUsers " + user_ + "\n");
    process_ = Process({"/usr/sbin/sshd", "-D", "-e", "-f", d + "/sshd_config"}, dir_ / "sshd.log");
    try {
      wait_for_port(port_, "sshd");
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) + ": " + log());
    }
  }
  // Lets the holder of `pub` (an OpenSSH .pub file) log in.
  void authorize(const std::filesystem::path& pub) {
    write_text(dir_ / "authorized_keys", read_text(dir_ / "authorized_keys") + ssh_public_key(pub) + "\n");
  }
  // ssh://USER@127.0.0.1:PORT/ABSOLUTE/PATH
  std::string url(const std::filesystem::path& repo) const {
    return "ssh://" + user_ + "@127.0.0.1:" + std::to_string(port_) + std::filesystem::absolute(repo).string();
  }
  // A known_hosts line for this server: "[127.0.0.1]:PORT ssh-ed25519 AAAA...".
  std::string known_hosts_line() const {
    return "[127.0.0.1]:" + std::to_string(port_) + " " + ssh_public_key(dir_ / "host_ed25519.pub") + "\n";
  }
  int port() const { return port_; }
  std::string log() const {
    std::error_code ec;
    return std::filesystem::exists(dir_ / "sshd.log", ec) ? read_text(dir_ / "sshd.log") : "";
  }

 private:
  std::filesystem::path dir_;
  int port_;
  std::string user_;
  Process process_;
};

// A real ssh-agent on its own socket (ssh-agent -D -a SOCK); add() runs ssh-add.
class SshAgent {
 public:
  explicit SshAgent(const std::filesystem::path& socket) : socket_(socket) {
    process_ = Process({"ssh-agent", "-D", "-a", socket_.string()}, socket_.string() + ".log");
    wait_for_file(socket_, "ssh-agent");
  }
  void add(const std::filesystem::path& key) {
    auto r = run_command({"env", "SSH_AUTH_SOCK=" + socket_.string(), "ssh-add", "-q", key.string()});
    if (r.exit_code != 0) throw std::runtime_error("ssh-add failed: " + r.err);
  }
  const std::filesystem::path& socket() const { return socket_; }

 private:
  std::filesystem::path socket_;
  Process process_;
};

}  // namespace gaggle::test::hub
