#pragma once
// GpuLedger: which trials the coordinator has placed on which GPU of which worker, with their
// share of it (common/gpu_share.h units; a whole-GPU trial holds all of it) and GPU memory. The
// scheduler's per-GPU view (GpuView), `wrpn worker list` (pb::Gpu share_used, trials) and the
// wrpn_worker_gpu_share gauge read it. Not thread-safe; the coordinator serialises calls under its
// mutex.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/scheduler.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

class GpuLedger {
 public:
  struct Holding {
    int64_t trial_id = 0;
    int64_t sweep_id = 0;
    int64_t units = 0;         // kGpuShareUnits for a whole-GPU trial
    int64_t memory_bytes = 0;  // 0 = no cap
  };
  // Places `h` on each of `slots` of `worker`.
  void Place(const std::string& worker, const std::vector<int>& slots, const Holding& h);
  // Removes every holding of `trial_id` on `worker`.
  void Release(const std::string& worker, int64_t trial_id);
  // The `count` lowest slots of `worker` (with `gpus` GPUs) that can take `h` now (whole GPUs:
  // empty ones); fewer when there are not enough. For leases loaded from a store that predates
  // stored slots.
  std::vector<int> FirstFit(const std::string& worker, size_t gpus, int count,
                            const Holding& h) const;
  // One view per registered GPU of `worker`, slot order.
  std::vector<GpuView> Views(const std::string& worker, const std::vector<GpuRecord>& gpus) const;
  // Sets share_used, memory_reserved_bytes and trials on each of `m`'s GPUs, and caps its
  // free_gpus at the GPUs nothing is placed on (a GPU holding fractions is not free).
  void Describe(const std::string& worker, pb::Worker* m) const;
  // Share in use per (worker name, GPU index) for the gauge.
  void ShareGauge(const std::string& worker, const std::string& name,
                  const std::vector<GpuRecord>& gpus,
                  std::map<std::vector<std::string>, double>* out) const;

 private:
  int64_t UsedUnits(const std::string& worker, int slot) const;
  std::map<std::string, std::map<int, std::vector<Holding>>> held_;  // worker -> slot -> trials
};

}  // namespace wrpn::server
