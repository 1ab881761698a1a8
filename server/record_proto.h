#pragma once
// Converters between the store's records (server/store.h) and the wrpn.v1 messages the API
// answers with, in both directions. Pure functions: what needs the coordinator's live state (a
// trial's pending reason and progress, a worker's leases) is passed in. Thread-safe.
#include <array>
#include <cstdint>
#include <set>
#include <string>

#include "server/lease_table.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

// A sweep's trials by state, indexed by TrialState (index 0 unused).
using TrialCounts = std::array<int64_t, kTrialStateCount>;  // by TrialState

pb::SweepState SweepStateOf(const SweepRecord& rec, const TrialCounts& counts);
bool SweepFinished(pb::SweepState s);  // succeeded, failed or cancelled
// `with_spec`: parse the stored canonical spec into Sweep.spec too.
pb::Sweep SweepMessage(const SweepRecord& rec, const TrialCounts& counts, bool with_spec);
// Everything but the live fields (pending_reason, progress), which the caller sets.
pb::Trial TrialMessage(const TrialRecord& t);
pb::Attempt AttemptMessage(const AttemptRecord& a);
pb::MetricValue MetricValueMessage(const MetricRecord& p);
pb::TrialEvent EventMessage(const EventRecord& e);

// "alive", "draining" or "lost".
const char* WorkerStateName(const WorkerRecord& w);
pb::Worker WorkerMessage(const WorkerRecord& w, const WorkerSlots& used,
                         const std::set<int64_t>& running_trials);
// A command for a worker about one of its leases (cancel its trial, forget it, ...).
pb::WorkerCommand LeaseCommand(pb::WorkerCommand::Kind kind, const pb::LeaseRef& lease,
                               int64_t trial_id, const std::string& reason);
// The record a registration describes; id and times are the caller's.
WorkerRecord WorkerRecordOf(const pb::RegisterWorkerRequest& req);

// The lease as handed to its worker. For a multi-node attempt `master_addr` is rank 0's
// address and `master_port` the port rank 0 reported (0 until then).
struct LeaseContext {
  const TrialRecord& trial;
  const AttemptRecord& attempt;
  std::string master_addr;
  int master_port = 0;
  int64_t lease_ttl_ms = 0;
  // recipe.init_from: fp32: the FP32 trial's final checkpoint the trial starts from ("" = none),
  // and whether other trials start from this one's (so its worker keeps it).
  std::string init_checkpoint;
  bool keep_checkpoint = false;
  int64_t stop_at_epoch = 0;  // a Pareto rung's epoch; 0 = the end
};
pb::Lease LeaseMessage(const LeaseEntry& l, const LeaseContext& ctx);

}  // namespace wrpn::server
