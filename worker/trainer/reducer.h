#pragma once
// DDP-style gradient synchronisation: parameters are grouped into buckets (in reverse
// registration order, which approximates the order backward produces gradients) of at most
// `bucket_bytes`; each bucket is all-reduced asynchronously as soon as all its gradients are
// ready during backward, buckets always launched in index order so every rank issues the same
// collective sequence; Finish() waits, averages and writes the averaged gradients back.
// Owns its gradient hooks and bucket buffers; used from the training and autograd threads of one
// step at a time (not for concurrent steps).
#include <memory>
#include <mutex>
#include <vector>

#include <ATen/core/Tensor.h>

#include "worker/trainer/communicator.h"

namespace wrpn::trainer {

class GradientReducer {
 public:
  GradientReducer(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call before each backward.
  void Prepare();
  // Call after backward, before the optimizer step.
  void Finish();

  size_t num_buckets() const { return buckets_.size(); }
  // Seconds spent in Finish() waiting for all-reduces, summed since construction.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offset;  // element offset of each param in `flat`
    at::Tensor flat;
    size_t pending = 0;
    bool launched = false;
    std::unique_ptr<PendingWork> work;
  };
  void OnGrad(size_t param, const at::Tensor& grad);
  void LaunchReadyInOrder();

  std::vector<at::Tensor> params_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // param -> bucket
  std::vector<size_t> slot_of_;    // param -> position in its bucket
  std::vector<bool> seen_;
  std::vector<unsigned> hooks_;
  size_t next_launch_ = 0;
  double wait_seconds_ = 0;
  std::mutex mu_;
};

// Copies every parameter and buffer of rank `root` to all ranks.
void BroadcastTensors(const std::vector<at::Tensor>& tensors, Communicator& comm, int root = 0);

}  // namespace wrpn::trainer
