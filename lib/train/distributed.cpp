#include "train/distributed.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "io/error.h"
#include "train/detail/room.h"

namespace gaggle::train {
namespace {

int env_int(const char* name, int fallback, bool required) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (required) throw_error(ErrorCode::usage, kRoom, std::string(name) + " is not set", "torchrun-style launches set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT");
    return fallback;
  }
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0 || n > 1 << 20)
    throw_error(ErrorCode::usage, kRoom, std::string(name) + "='" + v + "' is not a non-negative integer");
  return static_cast<int>(n);
}

class GlooCollective : public Collective {
 public:
  GlooCollective(const DistributedEnv& env, int timeout_seconds) : rank_(env.rank), world_(env.world_size) {
    try {
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(env.master_port);
      so.isServer = env.rank == 0;
      so.numWorkers = static_cast<std::size_t>(env.world_size);
      so.waitWorkers = true;
      so.timeout = std::chrono::seconds(timeout_seconds);
      store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
      auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::seconds(timeout_seconds));
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      options->threads = 2;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env.rank, env.world_size, options);
    } catch (const std::exception& e) {
      throw_error(ErrorCode::network, kRoom,
                  "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": cannot join " +
                      env.master_addr + ":" + std::to_string(env.master_port) + ": " + e.what(),
                  "check MASTER_ADDR/MASTER_PORT and that every rank was started");
    }
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  void allreduce_sum(at::Tensor& flat) override {
    std::vector<at::Tensor> ts{flat};
    group_->allreduce(ts)->wait();
  }
  void broadcast(at::Tensor& flat, int root) override {
    std::vector<at::Tensor> ts{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    group_->broadcast(ts, o)->wait();
  }
  void barrier() override { group_->barrier()->wait(); }

 private:
  int rank_, world_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

std::optional<DistributedEnv> distributed_env_from_environment() {
  if (!std::getenv("WORLD_SIZE")) return std::nullopt;
  DistributedEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, true);
  if (env.world_size < 1) throw_error(ErrorCode::usage, kRoom, "WORLD_SIZE must be at least 1");
  env.rank = env_int("RANK", 0, env.world_size > 1);
  if (env.rank >= env.world_size)
    throw_error(ErrorCode::usage, kRoom,
                "RANK " + std::to_string(env.rank) + " is not below WORLD_SIZE " + std::to_string(env.world_size));
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) env.master_addr = a;
  env.master_port = env_int("MASTER_PORT", 29500, false);
  if (env.master_port < 1 || env.master_port > 65535) throw_error(ErrorCode::usage, kRoom, "MASTER_PORT out of range");
  return env;
}

std::shared_ptr<Collective> connect_collective(const DistributedEnv& env, const std::string& device, int timeout_seconds) {
  if (device != "cpu")
    throw_error(ErrorCode::unsupported, kRoom, "data-parallel training on '" + device + "' needs NCCL",
                "this LibTorch build has Gloo only: use --device cpu, or build against an upstream CUDA LibTorch");
  return std::make_shared<GlooCollective>(env, timeout_seconds);
}

int free_local_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw_error(ErrorCode::io, kRoom, "cannot open a socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw_error(ErrorCode::io, kRoom, "cannot find a free port: " + errno_text(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int threads_per_rank(int requested, int hardware_threads) {
  if (requested > 0) return requested;
  int local = 1;
  if (const char* v = std::getenv("LOCAL_WORLD_SIZE"); v && *v) local = std::max(1, std::atoi(v));
  return std::max(1, hardware_threads / local);
}

int run_local_ranks(int nproc) {
  if (nproc < 1) throw_error(ErrorCode::usage, kRoom, "--nproc must be at least 1");
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < raw.size();) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  if (args.empty()) throw_error(ErrorCode::io, kRoom, "cannot read /proc/self/cmdline");
  const int port = free_local_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t p : pids) ::kill(p, SIGTERM);
      throw_error(ErrorCode::io, kRoom, "cannot start rank " + std::to_string(r) + ": " + errno_text(errno));
    }
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  int first_failure = 0;
  size_t left = pids.size();
  while (left > 0) {
    int status = 0;
    pid_t done = ::waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = std::find(pids.begin(), pids.end(), done);
    if (it == pids.end()) continue;
    *it = -1;
    --left;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && first_failure == 0) {
      first_failure = code;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);
    }
  }
  return first_failure;
}

}  // namespace gaggle::train
