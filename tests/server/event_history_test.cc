// EventHistory: sequence numbers and the recent events WatchSweep streams from.
#include "server/event_history.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

EventRecord Event(int64_t seq, int64_t sweep) {
  EventRecord e;
  e.seq = seq;
  e.sweep_id = sweep;
  return e;
}

TEST(EventHistory, NumbersContinueAfterALoad) {
  EventHistory h;
  EXPECT_EQ(h.LastSeq(), 0);
  h.ContinueAfter(41);
  EXPECT_EQ(h.NextSeq(), 42);
  EXPECT_EQ(h.LastSeq(), 42);
  h.ContinueAfter(10);  // never goes back
  EXPECT_EQ(h.NextSeq(), 43);
}

TEST(EventHistory, StreamsOneSweepsEventsAfterASeq) {
  EventHistory h;
  h.Append({Event(1, 1), Event(2, 2), Event(3, 1), Event(4, 2)});
  EXPECT_TRUE(h.HasAfter(3));
  EXPECT_FALSE(h.HasAfter(4));
  int64_t after = 1;
  std::vector<EventRecord> got = h.SweepEventsAfter(1, &after);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, 3);
  EXPECT_EQ(after, 4) << "moves past other sweeps' events too";
  EXPECT_TRUE(h.SweepEventsAfter(1, &after).empty());
}

TEST(EventHistory, KeepsOnlyTheNewest) {
  EventHistory h(2);
  h.Append({Event(1, 1), Event(2, 1), Event(3, 1)});
  int64_t after = 0;
  std::vector<EventRecord> got = h.SweepEventsAfter(1, &after);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 2);
}

}  // namespace
}  // namespace wrpn::server
