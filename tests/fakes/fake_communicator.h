#pragma once
// In-process fake of the trainer's Communicator: N "ranks" are threads of one test process that
// share a FakeCommunicatorHub. All-reduces are matched by call order, like real collectives, and
// the hub records every rank's sequence of collective sizes so tests can check that ranks issue
// the same sequence. Thread-safe.
#include <ATen/ATen.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "worker/trainer/communicator.h"

namespace wrpn::trainer {

class FakeCommunicatorHub {
 public:
  explicit FakeCommunicatorHub(int world) : world_(world), calls_(world) {}
  int world() const { return world_; }

  // Contributes rank's tensor to collective number `seq`; blocks until all ranks did, then
  // writes the sum into every rank's tensor.
  void AllReduce(int rank, int64_t seq, at::Tensor t) {
    std::unique_lock<std::mutex> lock(mu_);
    calls_[rank].push_back(t.numel());
    Slot& s = slots_[seq];
    s.parts.push_back(t);
    if (static_cast<int>(s.parts.size()) == world_) {
      at::Tensor sum = at::zeros_like(s.parts[0]);
      for (const auto& p : s.parts) sum.add_(p);
      for (auto& p : s.parts) p.copy_(sum);
      s.done = true;
      cv_.notify_all();
    }
    cv_.wait(lock, [&] { return s.done; });
  }
  void Broadcast(int rank, int64_t seq, at::Tensor t, int root) {
    std::unique_lock<std::mutex> lock(mu_);
    Slot& s = slots_[seq];
    if (rank == root) s.root = t.clone();
    s.arrived++;
    if (s.arrived == world_) {
      s.done = true;
      cv_.notify_all();
    }
    cv_.wait(lock, [&] { return s.done; });
    if (rank != root) t.copy_(s.root);
  }
  std::vector<int64_t> Calls(int rank) const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[rank];
  }

 private:
  struct Slot {
    std::vector<at::Tensor> parts;
    at::Tensor root;
    int arrived = 0;
    bool done = false;
  };
  const int world_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Slot> slots_;
  std::vector<std::vector<int64_t>> calls_;
};

class FakeCommunicator final : public Communicator {
 public:
  FakeCommunicator(std::shared_ptr<FakeCommunicatorHub> hub, int rank)
      : hub_(std::move(hub)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return hub_->world(); }
  std::string backend() const override { return "fake"; }
  // Completes at Wait(), like an asynchronous collective.
  std::unique_ptr<PendingWork> AllReduceSum(at::Tensor t) override {
    return std::make_unique<Work>(hub_, rank_, seq_++, std::move(t));
  }
  void Broadcast(at::Tensor t, int root) override { hub_->Broadcast(rank_, seq_++, std::move(t), root); }
  void Barrier() override { AllReduceSum(at::ones({1}))->Wait(); }

 private:
  class Work final : public PendingWork {
   public:
    Work(std::shared_ptr<FakeCommunicatorHub> hub, int rank, int64_t seq, at::Tensor t)
        : hub_(std::move(hub)), rank_(rank), seq_(seq), t_(std::move(t)) {}
    void Wait() override { hub_->AllReduce(rank_, seq_, t_); }

   private:
    std::shared_ptr<FakeCommunicatorHub> hub_;
    int rank_;
    int64_t seq_;
    at::Tensor t_;
  };
  std::shared_ptr<FakeCommunicatorHub> hub_;
  int rank_;
  int64_t seq_ = 0;
};

}  // namespace wrpn::trainer
