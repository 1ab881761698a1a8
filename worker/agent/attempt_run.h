#pragma once
// One attempt as the agent runs it: the lease, its plan, the trainer processes and their exits,
// what they said, why they were stopped and what is still to report. Owned and used by the
// agent's loop thread only.
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/agent/attempt_outcome.h"
#include "worker/agent/attempt_plan.h"
#include "worker/agent/attempt_progress.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/log_queue.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

struct AttemptRun {
  using Steady = std::chrono::steady_clock::time_point;

  pb::Lease lease;
  AttemptPlan plan;  // plan.gpus: the GPUs held until the attempt is done
  std::vector<std::unique_ptr<Process>> procs;  // by local rank
  std::vector<std::optional<ExitStatus>> exits;
  StopKind stop = StopKind::kNone;
  std::string stop_reason;
  std::optional<Steady> term_sent;
  bool killed = false;
  AttemptProgress progress;  // what the trainers said; points and checkpoint not yet reported
  Steady last_flush;         // of the metric points
  int first_bad = -1;  // local rank of the first process seen failing
  std::string notes;   // the agent's own lines for the attempt's log
  LogQueue logs;       // for ReportLogs
  std::optional<pb::CompleteTrialRequest> completion;  // decided outcome, not yet acknowledged
  bool awaiting_release = false;  // a gang node > 0 whose ranks ended cleanly
  bool done = false;              // reported or dropped: remove at the end of the step
  std::optional<Steady> retry_at;  // next try of a report the coordinator could not take
  Steady last_output;              // last line from any rank (the stall timeout's clock)

  pb::LeaseRef Ref() const {
    pb::LeaseRef ref;
    ref.set_lease_id(lease.lease_id());
    ref.set_fencing_token(lease.fencing_token());
    return ref;
  }
  // SIGTERM or SIGKILL (&Process::Terminate, &Process::Kill) to every rank still running.
  void Signal(void (Process::*signal)()) {
    for (size_t i = 0; i < procs.size(); ++i)
      if (!exits[i]) (procs[i].get()->*signal)();
  }
  int GlobalRank(int local) const { return plan.node_rank * plan.nproc + local; }
  // Some rank still runs and nothing is decided yet.
  bool Running() const {
    return !completion && !awaiting_release &&
           std::any_of(exits.begin(), exits.end(), [](const auto& e) { return !e.has_value(); });
  }
};

}  // namespace wrpn::agent
