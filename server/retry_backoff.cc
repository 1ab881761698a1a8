#include "server/retry_backoff.h"

#include <algorithm>

#include "common/trainer_protocol.h"

namespace wrpn::server {

std::chrono::milliseconds RetryDelay(const std::vector<AttemptRecord>& attempts,
                                     const RetryBackoff& b) {
  if (b.base.count() <= 0) return std::chrono::milliseconds(0);
  int failures = 0;  // failed attempts in a row, newest first
  for (auto a = attempts.rbegin(); a != attempts.rend(); ++a) {
    if (a->outcome != AttemptOutcome::kFailed ||
        (a->failure_kind && !FailureBacksOff(*a->failure_kind)))
      break;
    ++failures;
  }
  if (failures == 0) return std::chrono::milliseconds(0);
  std::chrono::milliseconds d = b.base;
  for (int i = 1; i < failures && d < b.max; ++i) d *= 2;
  return std::min(d, b.max);
}

void HeldTrials::Hold(int64_t trial_id, SteadyTime until) {
  Release(trial_id);
  by_time_.insert({until, trial_id});
  until_[trial_id] = until;
}

void HeldTrials::Release(int64_t trial_id) {
  auto it = until_.find(trial_id);
  if (it == until_.end()) return;
  by_time_.erase({it->second, trial_id});
  until_.erase(it);
}

std::optional<SteadyTime> HeldTrials::Until(int64_t trial_id) const {
  auto it = until_.find(trial_id);
  if (it == until_.end()) return std::nullopt;
  return it->second;
}

std::vector<int64_t> HeldTrials::TakeDue(SteadyTime now) {
  std::vector<int64_t> due;
  while (!by_time_.empty() && by_time_.begin()->first <= now) {
    due.push_back(by_time_.begin()->second);
    Release(due.back());
  }
  return due;
}

void HeldTrials::Clear() {
  by_time_.clear();
  until_.clear();
}

}  // namespace wrpn::server
