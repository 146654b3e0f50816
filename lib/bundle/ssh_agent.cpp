#include "bundle/ssh_agent.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "bundle/ssh_wire.h"
#include "io/error.h"

namespace gaggle::bundle {
namespace {

constexpr std::uint8_t kFailure = 5;
constexpr std::uint8_t kRequestIdentities = 11;
constexpr std::uint8_t kIdentitiesAnswer = 12;
constexpr std::uint8_t kSignRequest = 13;
constexpr std::uint8_t kSignResponse = 14;
constexpr std::uint32_t kMaxReply = 256 * 1024;

class AgentConnection {
 public:
  explicit AgentConnection(const std::string& path) : path_(path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
      throw_error(ErrorCode::io, "bundle", "ssh-agent socket path '" + path + "' is empty or too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw_error(ErrorCode::io, "bundle", "cannot create a unix socket: " + errno_text(errno));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int err = errno;
      ::close(fd_);
      throw_error(ErrorCode::io, "bundle", "cannot reach ssh-agent at '" + path + "': " + errno_text(err),
                  "is the agent running? eval \"$(ssh-agent)\" starts one and sets SSH_AUTH_SOCK");
    }
  }
  ~AgentConnection() { ::close(fd_); }
  AgentConnection(const AgentConnection&) = delete;
  AgentConnection& operator=(const AgentConnection&) = delete;

  std::string request(const std::string& payload) {
    WireWriter frame;
    frame.string(payload);
    write_all(frame.bytes());
    std::string len = read_exact(4);
    WireReader r(len, "ssh-agent reply");
    std::uint32_t n = r.u32("length");
    if (n == 0 || n > kMaxReply)
      throw_error(ErrorCode::io, "bundle", "ssh-agent at '" + path_ + "' sent a reply of " + std::to_string(n) + " bytes");
    return read_exact(n);
  }

 private:
  void write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw_error(ErrorCode::io, "bundle", "cannot write to ssh-agent at '" + path_ + "': " + errno_text(errno));
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  std::string read_exact(std::size_t count) {
    std::string out(count, '\0');
    std::size_t got = 0;
    while (got < count) {
      ssize_t n = ::read(fd_, out.data() + got, count - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw_error(ErrorCode::io, "bundle", "ssh-agent at '" + path_ + "' closed the connection mid-reply");
      got += static_cast<std::size_t>(n);
    }
    return out;
  }

  std::string path_;
  int fd_ = -1;
};

}  // namespace

std::string agent_socket_from_env() {
  const char* s = std::getenv("SSH_AUTH_SOCK");
  return s ? s : "";
}

std::vector<PublicKey> agent_identities(const std::string& socket_path) {
  AgentConnection conn(socket_path);
  WireWriter req;
  req.u8(kRequestIdentities);
  std::string reply = conn.request(req.bytes());
  WireReader r(reply, "ssh-agent identities");
  std::uint8_t type = r.u8("message type");
  if (type != kIdentitiesAnswer)
    throw_error(ErrorCode::auth, "bundle", "ssh-agent refused to list its keys (message " + std::to_string(type) + ")");
  std::uint32_t n = r.u32("number of keys");
  std::vector<PublicKey> keys;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view blob = r.string("key blob");
    std::string comment(r.string("key comment"));
    try {
      PublicKey k = public_key_from_blob(blob, "ssh-agent key");
      k.comment = comment;
      keys.push_back(std::move(k));
    } catch (const Error&) {
      // a key type we cannot parse: not ours to sign with
    }
  }
  return keys;
}

std::string agent_sign(const std::string& socket_path, const PublicKey& key, std::string_view data) {
  bool present = false;
  for (const auto& k : agent_identities(socket_path)) present = present || k.same_key(key);
  if (!present)
    throw_error(ErrorCode::auth, "bundle", "ssh-agent at '" + socket_path + "' does not hold the key " + key.fingerprint(),
                "add it to the agent: ssh-add PRIVATE_KEY (ssh-add -l lists what the agent holds)");
  AgentConnection conn(socket_path);
  WireWriter req;
  req.u8(kSignRequest);
  req.string(key.blob);
  req.string(data);
  req.u32(0);
  std::string reply = conn.request(req.bytes());
  WireReader r(reply, "ssh-agent signature");
  std::uint8_t type = r.u8("message type");
  if (type == kFailure)
    throw_error(ErrorCode::auth, "bundle", "ssh-agent refused to sign with " + key.fingerprint(),
                "the agent may need confirmation (ssh-add -c) or the key may have expired from it (ssh-add -t)");
  if (type != kSignResponse)
    throw_error(ErrorCode::auth, "bundle", "ssh-agent sent message " + std::to_string(type) + " instead of a signature");
  std::string sig(r.string("signature"));
  return sig;
}

}  // namespace gaggle::bundle
