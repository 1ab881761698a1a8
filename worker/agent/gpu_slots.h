#pragma once
// GpuSlots: the share of each of the worker's GPUs its running trials hold (common/gpu_share.h
// units; a whole-GPU trial holds all of it). The coordinator places every GPU trial on slots
// (Lease.gpu_slots); the agent checks the placement against what it runs and refuses one that
// would overfill a GPU, as the GPU itself would. Not thread-safe; the agent's thread owns it.
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::agent {

class GpuSlots {
 public:
  explicit GpuSlots(size_t gpus) : used_(gpus, 0) {}
  // Units one slot of `lease` takes: its share, or a whole GPU.
  static int64_t UnitsOf(const ::wrpn::v1::Lease& lease);
  // Takes the slots for `ranks` ranks of `lease`: the coordinator's gpu_slots when given, else
  // (older coordinators) the lowest idle GPUs, or for a fraction the fullest GPU it fits on.
  // FAILED_PRECONDITION naming the GPU when a slot is unknown or would be overfilled.
  absl::StatusOr<std::vector<int>> Take(const ::wrpn::v1::Lease& lease, int ranks);
  // The slots Take would take, taking nothing.
  absl::StatusOr<std::vector<int>> Pick(const ::wrpn::v1::Lease& lease, int ranks) const;
  // Holds `units` of each of `slots` (picked by Pick).
  void Hold(const std::vector<int>& slots, int64_t units);
  void Give(const std::vector<int>& slots, int64_t units);
  // GPUs nothing runs on.
  int Idle() const;
  // Leases worth asking for: as many trials of the smallest share (1/16) as the free share of
  // every GPU holds (the coordinator grants fewer when larger trials come first).
  int Wanted() const;
  int64_t used(int slot) const { return used_.at(static_cast<size_t>(slot)); }

 private:
  std::vector<int64_t> used_;
};

}  // namespace wrpn::agent
