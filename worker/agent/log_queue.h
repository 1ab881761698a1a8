#pragma once
// An attempt's log lines waiting for ReportLogs: bounded (the oldest go first when full) and sent
// as batches of one rank's consecutive lines. Best effort: a failure never holds up the
// attempt's other reports. Not thread-safe; owned by the agent's run of the attempt.
#include <chrono>
#include <deque>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "worker/agent/coordinator_client.h"

namespace wrpn::agent {

class LogQueue {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  static constexpr size_t kMaxPendingLines = 20000;
  static constexpr int kMaxLinesPerCall = 500;

  // `rank` -1 = the agent's own line.
  void Add(int rank, std::string line, Steady now);
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  Steady batch_started() const { return batch_started_; }
  void Clear() { lines_.clear(); }
  // Sends what the coordinator takes. UNIMPLEMENTED (the queue cleared): it takes no logs; a
  // transient error (IsTransient): the rest is kept for the next flush; lines it refuses are
  // dropped.
  absl::Status Flush(CoordinatorClient& client, const pb::LeaseRef& lease, Steady now);

 private:
  std::deque<std::pair<int, std::string>> lines_;
  Steady batch_started_;
};

}  // namespace wrpn::agent
