#pragma once
// The retry backoff: how long a trial whose attempt failed waits before it is leased again, and
// the trials waiting it out (queued, but not yet in the scheduler). Pure; thread-compatible (the
// Coordinator calls it under its mutex).
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/store.h"

namespace wrpn::server {

using SteadyTime = std::chrono::steady_clock::time_point;

struct RetryBackoff {
  std::chrono::milliseconds base{0};  // after one failure; 0 = no backoff
  std::chrono::milliseconds max{300000};
};

// `b.base` after one failed attempt, doubled for each further failure in a row (newest first,
// counting only kinds that back off: common/trainer_protocol.h), at most `b.max`; 0 when the
// newest attempt did not fail or base is 0.
std::chrono::milliseconds RetryDelay(const std::vector<AttemptRecord>& attempts,
                                     const RetryBackoff& b);

// Queued trials waiting out their backoff, by the time they are due.
class HeldTrials {
 public:
  void Hold(int64_t trial_id, SteadyTime until);  // replaces an earlier hold of the trial
  void Release(int64_t trial_id);                 // a trial not held is a no-op
  std::optional<SteadyTime> Until(int64_t trial_id) const;
  // Releases the trials due at `now`, earliest first.
  std::vector<int64_t> TakeDue(SteadyTime now);
  void Clear();

 private:
  std::set<std::pair<SteadyTime, int64_t>> by_time_;
  std::unordered_map<int64_t, SteadyTime> until_;
};

}  // namespace wrpn::server
