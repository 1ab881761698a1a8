#include "server/trial_transitions.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace wrpn::server {

bool Terminal(TrialState s) {
  return s == TrialState::kSucceeded || s == TrialState::kFailed || s == TrialState::kCancelled ||
         s == TrialState::kPruned;
}

StartedAttempt StartAttempt(const TrialRecord& t, int64_t token,
                            const std::vector<std::string>& worker_ids, int64_t now_ms) {
  StartedAttempt s{t, {}};
  TrialRecord& r = s.trial;
  r.state = TrialState::kRunning;
  r.attempts++;
  if (r.started_ms == 0) r.started_ms = now_ms;
  AttemptRecord& a = s.attempt;
  a.trial_id = r.id;
  a.attempt = r.attempts;
  a.fencing_token = token;
  a.worker_ids = worker_ids;
  for (size_t rank = 0; rank < worker_ids.size(); ++rank)
    a.lease_ids.push_back(absl::StrCat("l-", token, "-", rank));
  a.started_ms = now_ms;
  a.resume_checkpoint = r.checkpoint_path;
  a.resume_epoch = r.checkpoint_epoch;
  return s;
}

std::string AttemptStartedMessage(const AttemptRecord& a) {
  return absl::StrCat("attempt ", a.attempt, " leased to ", absl::StrJoin(a.worker_ids, ","));
}

TrialRecord AfterAttempt(const TrialRecord& t, AttemptOutcome outcome, const std::string& reason,
                         bool retry, int max_attempts, int64_t now_ms) {
  TrialRecord r = t;
  switch (outcome) {
    case AttemptOutcome::kSucceeded:
      r.state = TrialState::kSucceeded;
      r.error.clear();
      r.finished_ms = now_ms;
      break;
    case AttemptOutcome::kCancelled:
      r.state = TrialState::kCancelled;
      r.finished_ms = now_ms;
      break;
    default:
      r.error = reason;
      if (retry && r.attempts - r.retry_base < max_attempts) {
        r.state = TrialState::kQueued;
        r.queued_ms = now_ms;
      } else {
        r.state = TrialState::kFailed;
        r.finished_ms = now_ms;
      }
  }
  return r;
}

std::string AttemptEndedMessage(const AttemptRecord& a, const std::string& reason, bool requeued,
                                std::chrono::milliseconds delay) {
  std::string msg = absl::StrCat("attempt ", a.attempt, " ", AttemptOutcomeName(a.outcome));
  if (!reason.empty()) absl::StrAppend(&msg, ": ", reason);
  if (requeued) {
    absl::StrAppend(&msg, "; re-queued");
    if (delay.count() > 0)
      absl::StrAppend(&msg, absl::StrFormat(", leased again in %g s (retry backoff)",
                                            delay.count() / 1000.0));
  }
  return msg;
}

TrialRecord CancelledWhileQueued(const TrialRecord& t, int64_t now_ms) {
  TrialRecord r = t;
  r.state = TrialState::kCancelled;
  r.finished_ms = now_ms;
  return r;
}

TrialRecord FailedWhileQueued(const TrialRecord& t, const std::string& reason, int64_t now_ms) {
  TrialRecord r = t;
  r.state = TrialState::kFailed;
  r.error = reason;
  r.finished_ms = now_ms;
  return r;
}

TrialRecord RequeuedByRetry(const TrialRecord& t, int64_t now_ms) {
  TrialRecord r = t;
  r.state = TrialState::kQueued;
  r.retry_base = r.attempts;
  r.queued_ms = now_ms;
  r.finished_ms = 0;
  return r;
}

TrialRecord ReachedRung(const TrialRecord& t, int64_t now_ms) {
  TrialRecord r = t;
  r.state = TrialState::kQueued;
  r.retry_base = r.attempts;
  r.error.clear();
  r.queued_ms = now_ms;
  return r;
}

TrialRecord PrunedAtRung(const TrialRecord& t, double top1, int64_t epoch, int64_t now_ms) {
  TrialRecord r = t;
  r.state = TrialState::kPruned;
  r.pruned_top1 = top1;
  r.pruned_epoch = epoch;
  r.finished_ms = now_ms;
  return r;
}

TrialRecord ResumedFromPruned(const TrialRecord& t, int64_t now_ms) {
  TrialRecord r = RequeuedByRetry(t, now_ms);
  r.pruned_top1.reset();
  r.pruned_epoch = 0;
  return r;
}

}  // namespace wrpn::server
