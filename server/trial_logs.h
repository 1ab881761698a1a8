#pragma once
// TrialLogs: the recent log lines of each trial, in memory only (not persisted): the last
// kMaxLines per trial, each cut to kMaxLineBytes, numbered by a per-trial sequence so a reader
// can follow with after_seq. Lines pushed out are counted as dropped. Thread-compatible: the
// Coordinator calls it under its mutex.
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

class TrialLogs {
 public:
  static constexpr int64_t kMaxLines = 5000;
  static constexpr size_t kMaxLineBytes = 4096;

  // Appends one line that rank `rank` of attempt `attempt` wrote, received at `time_ms`.
  void Append(int64_t trial_id, int attempt, int rank, const std::string& text, int64_t time_ms);
  // Fills `resp` with the lines of `trial_id` after `after_seq`, at most `limit` (<= 0 or more
  // than kMaxLines: kMaxLines), the newest sequence number and how many were dropped.
  void Read(int64_t trial_id, int64_t after_seq, int64_t limit,
            pb::GetTrialLogsResponse* resp) const;

 private:
  struct Log {
    std::deque<pb::LogLine> lines;
    int64_t next_seq = 1;
    int64_t dropped = 0;
  };
  std::unordered_map<int64_t, Log> logs_;  // by trial id
};

}  // namespace wrpn::server
