#pragma once
// The outcome of an attempt whose ranks have all exited: one pure decision from what the agent
// saw (exits, the trainer's events, why it was stopped) to what it reports. Table-tested in
// tests/worker/agent/attempt_outcome_test.cc. Stateless, thread-safe.
#include <optional>
#include <string>
#include <vector>

#include "common/trainer_protocol.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

// Why the agent stopped an attempt's ranks (kNone: it did not).
enum class StopKind { kNone, kCancel, kForget, kLeaseLost, kDrain, kPeerFailed, kStalled };

// The coordinator ended the attempt (cancel, forget, lease lost): nothing more is reported.
inline bool EndedByCoordinator(StopKind k) {
  return k == StopKind::kCancel || k == StopKind::kForget || k == StopKind::kLeaseLost;
}

struct AttemptFacts {
  std::string worker;  // this worker's name, for the reasons
  int node_rank = 0;
  int nproc = 1;
  std::vector<ExitStatus> exits;  // by local rank (one for a single-step gang)
  int first_bad = -1;             // local rank of the first process seen failing
  StopKind stop = StopKind::kNone;
  std::string stop_reason;
  std::optional<FinishedEvent> finished;        // the leader's
  std::optional<FailedEvent> failed;            // the leader's, else the first rank's
  std::optional<InterruptedEvent> interrupted;  // the leader's
};

struct Outcome {
  enum class Kind {
    kDrop,          // the coordinator ended it: report nothing, drop the lease
    kSucceeded,     // report `finished` as the result
    kAwaitRelease,  // a gang node > 0 whose ranks ended cleanly: rank 0's worker reports
    kFailed,        // report failure{kind, reason}
  };
  Kind kind = Kind::kFailed;
  FailureKind failure = FailureKind::kInternal;
  std::string reason;  // kFailed: what is reported; kDrop: why
};

Outcome DecideOutcome(const AttemptFacts& facts);

}  // namespace wrpn::agent
