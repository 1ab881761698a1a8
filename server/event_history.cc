#include "server/event_history.h"

#include <algorithm>

namespace wrpn::server {

void EventHistory::ContinueAfter(int64_t seq) { next_seq_ = std::max(next_seq_, seq + 1); }

void EventHistory::Append(std::vector<EventRecord>&& events) {
  for (EventRecord& e : events) {
    recent_.push_back(std::move(e));
    if (recent_.size() > capacity_) recent_.pop_front();
  }
}

bool EventHistory::HasAfter(int64_t seq) const {
  return !recent_.empty() && recent_.back().seq > seq;
}

std::vector<EventRecord> EventHistory::SweepEventsAfter(int64_t sweep_id, int64_t* after) const {
  std::vector<EventRecord> out;
  auto it = std::lower_bound(recent_.begin(), recent_.end(), *after + 1,
                             [](const EventRecord& e, int64_t seq) { return e.seq < seq; });
  for (; it != recent_.end(); ++it) {
    *after = it->seq;
    if (it->sweep_id == sweep_id) out.push_back(*it);
  }
  return out;
}

}  // namespace wrpn::server
