#pragma once
// The trial state machine's transitions as pure functions: what a trial's record (and its
// attempt's) becomes when an attempt starts or ends, when a sweep is cancelled or retried, and
// the event text each writes. The Coordinator decides when a transition happens, applies it
// under its lock and stores the result. Thread-safe.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "server/store.h"

namespace wrpn::server {

bool Terminal(TrialState s);  // succeeded, failed, cancelled or pruned

struct StartedAttempt {
  TrialRecord trial;  // running, one attempt more
  AttemptRecord attempt;
};
// A new attempt of `t` with fencing token `token` on `worker_ids` (node rank order), resuming
// from the trial's last checkpoint.
StartedAttempt StartAttempt(const TrialRecord& t, int64_t token,
                            const std::vector<std::string>& worker_ids, int64_t now_ms);
std::string AttemptStartedMessage(const AttemptRecord& a);

// `t` after its attempt ended with `outcome`: succeeded and cancelled are final; any other
// outcome re-queues the trial when `retry` and fewer than `max_attempts` attempts were made
// since the last RetrySweep, else fails it with `reason`.
TrialRecord AfterAttempt(const TrialRecord& t, AttemptOutcome outcome, const std::string& reason,
                         bool retry, int max_attempts, int64_t now_ms);
// "attempt 2 failed: <reason>; re-queued, leased again in 10 s (retry backoff)".
std::string AttemptEndedMessage(const AttemptRecord& a, const std::string& reason, bool requeued,
                                std::chrono::milliseconds delay);

TrialRecord CancelledWhileQueued(const TrialRecord& t, int64_t now_ms);
// A queued trial that can no longer run (the FP32 trial it starts from failed): failed with
// `reason`, without an attempt.
TrialRecord FailedWhileQueued(const TrialRecord& t, const std::string& reason, int64_t now_ms);
// RetrySweep: queued again with a fresh attempt budget.
TrialRecord RequeuedByRetry(const TrialRecord& t, int64_t now_ms);

// Pareto-pruned sweeps (docs/pareto.md). A trial whose attempt stopped at a rung: queued (held
// for the rung's decision or on to the next rung), the stop not counted against max_attempts.
TrialRecord ReachedRung(const TrialRecord& t, int64_t now_ms);
// Ended at its rung, off the front: pruned with its top-1 there.
TrialRecord PrunedAtRung(const TrialRecord& t, double top1, int64_t epoch, int64_t now_ms);
// `retry --pruned`: queued again, to the end, with a fresh attempt budget.
TrialRecord ResumedFromPruned(const TrialRecord& t, int64_t now_ms);

}  // namespace wrpn::server
