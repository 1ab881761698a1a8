#pragma once
// Sweep submission, the part before the coordinator's lock: the spec a SubmitSweep request
// carries (as a message or as text) parsed and validated by common/sweep_spec, and expanded into
// one trial record per point with its trainer config, resources and compute cost, plus the FP32
// trials a recipe.init_from: fp32 spec needs and lacks (server/init_dependencies.h). Pure;
// thread-safe. Ids, times and the sweep id are the Coordinator's to assign.
#include <vector>

#include "absl/status/statusor.h"
#include "common/sweep_spec.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

// INVALID_ARGUMENT naming the field when the spec is wrong, or when the request has none.
absl::StatusOr<SweepSpec> ParseSpecOf(const pb::SubmitSweepRequest& req);

// How many trials PlanSweep makes (the FP32 trials it adds included).
int64_t PlannedTrialCount(const SweepSpec& spec);

struct PlannedSweep {
  SweepRecord sweep;                // id and created_ms unset
  std::vector<TrialRecord> trials;  // expansion order; id, sweep_id and queued_ms unset
};
// A 100,000-trial spec takes a while: call it without holding a lock.
PlannedSweep PlanSweep(const SweepSpec& spec);

}  // namespace wrpn::server
