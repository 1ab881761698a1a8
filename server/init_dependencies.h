#pragma once
// recipe.init_from: fp32 (docs/recipe.md): each quantized trial of such a sweep starts from the
// final checkpoint of the FP32 (32/32) trial of the same network, width and seed. This unit says
// which trial waits for which, which FP32 trials a sweep must add, and what a waiting trial does
// given its source's state. The dependencies are derived from the stored trials (their scheme,
// bits and config), so they survive a coordinator restart with nothing else stored. Not
// thread-safe; the coordinator serialises calls (under its lock).
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/sweep_spec.h"
#include "server/store.h"

namespace wrpn::server {

// The FP32 points (scheme wrpn) an init_from: fp32 spec needs and `points` lacks, in the order of
// their first dependent; none for other specs.
std::vector<TrialPoint> MissingFp32Points(const SweepSpec& spec,
                                          const std::vector<TrialPoint>& points);

// Whether `t` is a quantized trial whose config says init_from: fp32.
bool WantsFp32Init(const TrialRecord& t);

enum class InitGate {
  kReady,  // the source succeeded with a checkpoint: lease the dependent, with that checkpoint
  kWait,   // the source is queued or running: hold the dependent
  kFail,   // the source failed or was cancelled: fail the dependent
};
struct InitDecision {
  InitGate gate = InitGate::kReady;
  std::string reason;  // kWait: the pending reason; kFail: the dependent's error
};
// What a dependent of `source` does now.
InitDecision DecideInit(const TrialRecord& source);

// Which trial starts from which FP32 trial, and which dependents are parked: queued, but held out
// of the scheduler until their source ends.
class InitDependencies {
 public:
  // Adds one sweep's trials (all of them, any order). A quantized trial with init_from: fp32
  // depends on the FP32 trial of its network, width and seed: of its own scheme if the sweep has
  // one, else of any scheme (32/32 trials train the same network whatever their scheme).
  void AddSweep(const std::vector<const TrialRecord*>& trials);
  // 0 when `trial_id` depends on nothing.
  int64_t SourceOf(int64_t trial_id) const;
  // The trials that start from `source_id` (empty when none).
  const std::vector<int64_t>& DependentsOf(int64_t source_id) const;
  bool HasDependents(int64_t source_id) const { return dependents_.count(source_id) > 0; }

  void Park(int64_t trial_id) { parked_.insert(trial_id); }
  // Whether `trial_id` was parked (it is not any more).
  bool Unpark(int64_t trial_id) { return parked_.erase(trial_id) > 0; }

 private:
  std::map<int64_t, int64_t> source_;
  std::map<int64_t, std::vector<int64_t>> dependents_;
  std::set<int64_t> parked_;
};

}  // namespace wrpn::server
