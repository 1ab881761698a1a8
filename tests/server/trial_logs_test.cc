// TrialLogs: the bounded in-memory log of each trial.
#include "server/trial_logs.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

TEST(TrialLogs, NumbersLinesPerTrialAndFollowsAfterSeq) {
  TrialLogs logs;
  logs.Append(1, 1, 0, "a", 100);
  logs.Append(1, 2, 1, "b", 200);
  logs.Append(2, 1, 0, "other trial", 300);
  pb::GetTrialLogsResponse r;
  logs.Read(1, 0, 0, &r);
  ASSERT_EQ(r.lines_size(), 2);
  EXPECT_EQ(r.lines(0).seq(), 1);
  EXPECT_EQ(r.lines(1).seq(), 2);
  EXPECT_EQ(r.lines(1).line(), "b");
  EXPECT_EQ(r.lines(1).attempt(), 2);
  EXPECT_EQ(r.lines(1).rank(), 1);
  EXPECT_EQ(r.lines(1).time_ms(), 200);
  EXPECT_EQ(r.last_seq(), 2);
  pb::GetTrialLogsResponse after;
  logs.Read(1, 1, 0, &after);
  ASSERT_EQ(after.lines_size(), 1);
  EXPECT_EQ(after.lines(0).line(), "b");
  pb::GetTrialLogsResponse limited;
  logs.Read(1, 0, 1, &limited);
  EXPECT_EQ(limited.lines_size(), 1);
  EXPECT_EQ(limited.last_seq(), 2);
  pb::GetTrialLogsResponse none;
  logs.Read(9, 0, 0, &none);
  EXPECT_EQ(none.lines_size(), 0);
  EXPECT_EQ(none.last_seq(), 0);
}

TEST(TrialLogs, KeepsTheNewestLinesAndCutsLongOnes) {
  TrialLogs logs;
  for (int64_t i = 0; i < TrialLogs::kMaxLines + 10; ++i) logs.Append(1, 1, 0, "x", i);
  logs.Append(1, 1, 0, std::string(TrialLogs::kMaxLineBytes + 100, 'y'), 0);
  pb::GetTrialLogsResponse r;
  logs.Read(1, 0, TrialLogs::kMaxLines * 2, &r);
  EXPECT_EQ(r.lines_size(), TrialLogs::kMaxLines);
  EXPECT_EQ(r.dropped(), 11);
  EXPECT_EQ(r.last_seq(), TrialLogs::kMaxLines + 11);
  EXPECT_EQ(r.lines(0).seq(), 12) << "the oldest lines went";
  EXPECT_EQ(r.lines(r.lines_size() - 1).line().size(), TrialLogs::kMaxLineBytes);
}

}  // namespace
}  // namespace wrpn::server
