#pragma once
// Data-parallel training across processes and machines (issue #4, item 8; design.md §6)
// with LibTorch's own c10d: Gloo on CPU (NCCL for CUDA is not in Debian's LibTorch build:
// an Error{unsupported} says so). Launched torchrun-style: every process gets RANK,
// WORLD_SIZE, MASTER_ADDR and MASTER_PORT; rank 0 hosts the rendezvous (a TCPStore).
//
// How the loop uses it (loop.h): every rank draws the same global batch of
// batch_size x WORLD_SIZE examples and computes its own slice; gradients (already divided
// by the global batch's target-token count) are summed across ranks, so N processes with
// batch b take the same steps as one process with batch N*b. Rank 0 alone writes logs,
// checkpoints and the bundle; every rank reads a checkpoint on --resume (a shared
// filesystem across machines).
#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gaggle::train {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place, every rank ends with the element-wise sum.
  virtual void allreduce_sum(at::Tensor& flat) = 0;
  // In place, every rank ends with rank `root`'s values.
  virtual void broadcast(at::Tensor& flat, int root) = 0;
  virtual void barrier() = 0;
};

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the environment; nullopt when WORLD_SIZE
// is unset. Malformed or inconsistent values are an Error{usage} naming the variable.
std::optional<DistributedEnv> distributed_env_from_environment();

// Joins the process group (blocks until every rank has joined, up to `timeout_seconds`).
// device "cpu": Gloo. Throws Error{network} when the rendezvous fails.
std::shared_ptr<Collective> connect_collective(const DistributedEnv& env, const std::string& device,
                                               int timeout_seconds = 300);

// A TCP port that was free a moment ago on 127.0.0.1 (for --nproc).
int free_local_port();

// `--nproc N`: runs N copies of this very command (/proc/self/exe with /proc/self/cmdline)
// as ranks 0..N-1 on 127.0.0.1 (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT set), waits for all, and returns the first non-zero exit
// status (128 + signal for a killed rank; the other ranks are then terminated), or 0.
int run_local_ranks(int nproc);

// Compute threads for this process: `requested` if positive, else the machine's cores
// divided among LOCAL_WORLD_SIZE local ranks (at least 1).
int threads_per_rank(int requested, int hardware_threads);

}  // namespace gaggle::train
