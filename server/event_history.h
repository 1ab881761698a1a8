#pragma once
// EventHistory: the sequence numbers of trial and sweep events and the newest committed events in
// memory (oldest dropped past `capacity`), which WatchSweep streams from; the full log is in the
// store. Thread-compatible: the Coordinator calls it under its mutex.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "server/store.h"

namespace wrpn::server {

class EventHistory {
 public:
  explicit EventHistory(size_t capacity = 100000) : capacity_(capacity) {}

  int64_t NextSeq() { return next_seq_++; }
  // After a load: the next number is above `seq` (the store's highest).
  void ContinueAfter(int64_t seq);
  int64_t LastSeq() const { return next_seq_ - 1; }
  // Keeps events that were committed (in seq order).
  void Append(std::vector<EventRecord>&& events);
  // Whether an event newer than `seq` is kept.
  bool HasAfter(int64_t seq) const;
  // The kept events of `sweep_id` newer than `*after`, oldest first; `*after` moves to the
  // newest event looked at, of any sweep.
  std::vector<EventRecord> SweepEventsAfter(int64_t sweep_id, int64_t* after) const;

 private:
  size_t capacity_;
  std::deque<EventRecord> recent_;  // newest last
  int64_t next_seq_ = 1;
};

}  // namespace wrpn::server
