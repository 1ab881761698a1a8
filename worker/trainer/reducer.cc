#include "worker/trainer/reducer.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <chrono>

namespace wrpn::trainer {

GradientReducer::GradientReducer(std::vector<at::Tensor> params, Communicator& comm,
                                 int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  bucket_of_.resize(params_.size());
  slot_of_.resize(params_.size());
  seen_.assign(params_.size(), false);
  // Reverse registration order: the last layers' gradients are ready first.
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() || (bytes > 0 && bytes + b > bucket_bytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = bucket.params.size();
    bucket.offset.push_back(bucket.params.empty() ? 0 : bucket.offset.back() + params_[bucket.params.back()].numel());
    bucket.params.push_back(k);
    bytes += b;
  }
  for (auto& bucket : buckets_) {
    const size_t last = bucket.params.back();
    const int64_t total = bucket.offset.back() + params_[last].numel();
    bucket.flat = at::zeros({total}, params_[last].options().requires_grad(false));
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](at::Tensor grad) { OnGrad(k, grad); }));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradientReducer::Prepare() {
  std::lock_guard<std::mutex> lock(mu_);
  std::fill(seen_.begin(), seen_.end(), false);
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.launched = false;
    b.work.reset();
  }
  next_launch_ = 0;
}

void GradientReducer::OnGrad(size_t k, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seen_[k]) return;  // a parameter used twice: its hook fires per use; take the first (see Finish)
  Bucket& b = buckets_[bucket_of_[k]];
  if (b.launched) return;
  b.flat.narrow(0, b.offset[slot_of_[k]], grad.numel()).copy_(grad.reshape({-1}));
  seen_[k] = true;
  if (--b.pending == 0) LaunchReadyInOrder();
}

void GradientReducer::LaunchReadyInOrder() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_++];
    b.flat.div_(comm_.world_size());
    b.launched = true;
    b.work = comm_.AllReduceSum(b.flat);
  }
}

void GradientReducer::Finish() {
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Parameters whose hook did not fire (unused this step, or used more than once) contribute
    // their accumulated .grad (or zero), so every rank still launches every bucket.
    for (auto& b : buckets_) {
      if (b.pending == 0) continue;
      for (size_t s = 0; s < b.params.size(); ++s) {
        const size_t k = b.params[s];
        if (seen_[k]) continue;
        const at::Tensor& g = params_[k].grad();
        at::Tensor dst = b.flat.narrow(0, b.offset[s], params_[k].numel());
        if (g.defined()) dst.copy_(g.reshape({-1})); else dst.zero_();
        seen_[k] = true;
      }
      b.pending = 0;
    }
    LaunchReadyInOrder();
  }
  at::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b.work->Wait();
    for (size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = params_[b.params[s]];
      const at::Tensor avg = b.flat.narrow(0, b.offset[s], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(avg);
      } else {
        p.mutable_grad() = avg.clone();
      }
    }
  }
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BroadcastTensors(const std::vector<at::Tensor>& tensors, Communicator& comm, int root) {
  at::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    at::Tensor c = t.is_contiguous() ? t : t.contiguous();
    comm.Broadcast(c, root);
    if (!c.is_same(t)) t.copy_(c);
  }
}

}  // namespace wrpn::trainer
