#include "hub/credentials.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <vector>

namespace gaggle::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// "scheme://[user@]host[:port]/path" -> the fields git credential wants.
struct UrlParts {
  std::string protocol, host, path, username;
};

UrlParts split_url(const std::string& url) {
  UrlParts p;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return p;
  p.protocol = url.substr(0, scheme_end);
  std::string rest = url.substr(scheme_end + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) p.path = rest.substr(slash + 1);
  auto at = authority.rfind('@');
  if (at != std::string::npos) {
    p.username = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  p.host = authority;
  return p;
}

}  // namespace

std::optional<Credential> credential_from_environment() {
  std::string user = env("GAGGLE_USER"), password = env("GAGGLE_PASSWORD"), token = env("GAGGLE_TOKEN");
  if (!token.empty()) return Credential{user.empty() ? "gaggle" : user, token};
  if (!user.empty() && !password.empty()) return Credential{user, password};
  return std::nullopt;
}

std::optional<Credential> credential_from_git_helper(const std::string& url) {
  UrlParts parts = split_url(url);
  if (parts.protocol.empty() || parts.host.empty()) return std::nullopt;
  std::ostringstream request;
  request << "protocol=" << parts.protocol << "\nhost=" << parts.host << "\n";
  if (!parts.path.empty()) request << "path=" << parts.path << "\n";
  if (!parts.username.empty()) request << "username=" << parts.username << "\n";
  request << "\n";
  std::string input = request.str();

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return std::nullopt;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return std::nullopt;
  }
  pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    ::setenv("GIT_TERMINAL_PROMPT", "0", 1);
    ::setenv("GIT_ASKPASS", "/bin/false", 1);
    ::setenv("SSH_ASKPASS", "/bin/false", 1);
    const char* argv[] = {"git", "credential", "fill", nullptr};
    ::execvp("git", const_cast<char* const*>(argv));
    _exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  auto old_sigpipe = ::signal(SIGPIPE, SIG_IGN);
  (void)!::write(in_pipe[1], input.data(), input.size());
  ::close(in_pipe[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_pipe[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<std::size_t>(n));
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::signal(SIGPIPE, old_sigpipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  Credential c;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("username=", 0) == 0) c.username = line.substr(9);
    if (line.rfind("password=", 0) == 0) c.password = line.substr(9);
  }
  if (c.password.empty()) return std::nullopt;
  return c;
}

std::optional<Credential> find_credential(const std::string& url) {
  if (auto c = credential_from_environment()) return c;
  return credential_from_git_helper(url);
}

}  // namespace gaggle::hub
