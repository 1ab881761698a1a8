#pragma once
// Collectives for data-parallel training. `Communicator` is the seam: c10d process groups (Gloo
// for CPU tensors, NCCL for CUDA tensors) behind it in production, a fake in unit tests.
// Rendezvous is torchrun-compatible: a c10d TCPStore hosted by rank 0 at MASTER_ADDR:MASTER_PORT.
// A Communicator is used from one training thread (and the autograd thread it drives).
#include <chrono>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace wrpn::trainer {

// An asynchronous collective in flight.
class PendingWork {
 public:
  virtual ~PendingWork() = default;
  virtual void Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;
  // Sums `t` in place across ranks; the result is valid after Wait().
  virtual std::unique_ptr<PendingWork> AllReduceSum(at::Tensor t) = 0;
  // Copies root's `t` into every rank's `t` (blocking).
  virtual void Broadcast(at::Tensor t, int root) = 0;
  virtual void Barrier() = 0;
};

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::chrono::milliseconds rendezvous_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds collective_timeout{std::chrono::minutes(10)};
  int64_t bucket_bytes = 25 * 1024 * 1024;
};

// Which communicators this build has (Debian's LibTorch ships Gloo; the CUDA wheel has NCCL but
// no Gloo headers).
bool HaveGloo();
bool HaveNccl();

// Joins the job described by `options` (blocks until every rank arrived or the rendezvous
// timeout passed; the error then names the ranks that never arrived) and returns a communicator
// for tensors on `cuda` devices (NCCL) or on the CPU (Gloo).
absl::StatusOr<std::unique_ptr<Communicator>> Connect(const DistributedOptions& options, bool cuda);

}  // namespace wrpn::trainer
