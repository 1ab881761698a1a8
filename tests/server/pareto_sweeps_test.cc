// ParetoSweeps (server/pareto_sweeps.h): a trial's target rung and stop epoch from the stored
// decisions, the rung's trials as the rung rule sees them, resumption by `retry --pruned`, and
// stored rows that are refused with the row and the field named.
#include "server/pareto_sweeps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;

SweepRecord Pareto(int64_t id) {
  SweepRecord s;
  s.id = id;
  s.spec_json = nlohmann::json{{"name", "p"},
                               {"search", {{"mode", "pareto"}, {"rungs", {2, 5}}, {"margin", 0.5}}}}
                    .dump();
  return s;
}

TrialRecord T(int64_t id, double width, int bits, int64_t seed, TrialState state = TrialState::kRunning) {
  TrialRecord t;
  t.id = id;
  t.sweep_id = 1;
  t.network = "lenet5";
  t.width = width;
  t.wbits = t.abits = bits;
  t.seed = seed;
  t.state = state;
  t.cost_uniform = width * width * bits / 32.0;
  return t;
}

TEST(ParetoSweeps, OnlyParetoSpecsAreRegistered) {
  ParetoSweeps p;
  SweepRecord grid;
  grid.id = 2;
  grid.spec_json = R"({"name": "g"})";
  EXPECT_FALSE(p.AddSweep(grid));
  EXPECT_TRUE(p.AddSweep(Pareto(1)));
  EXPECT_TRUE(p.IsPareto(1));
  EXPECT_FALSE(p.IsPareto(2));
  EXPECT_EQ(p.RungCount(1), 2);
  EXPECT_EQ(p.RungOfEpoch(1, 5), 1);
  EXPECT_EQ(p.RungOfEpoch(1, 3), -1);
  EXPECT_EQ(p.StopEpoch(T(9, 1, 4, 0)), 2);
  TrialRecord other = T(9, 1, 4, 0);
  other.sweep_id = 2;
  EXPECT_EQ(p.StopEpoch(other), 0) << "grid sweeps train to the end";
}

TEST(ParetoSweeps, TargetsFollowTheDecisionsRungByRung) {
  ParetoSweeps p;
  ASSERT_TRUE(p.AddSweep(Pareto(1)));
  const TrialRecord a0 = T(1, 1, 4, 0), a1 = T(2, 1, 4, 1), b0 = T(3, 2, 2, 0), b1 = T(4, 2, 2, 1);
  const std::vector<const TrialRecord*> all = {&a0, &a1, &b0, &b1};
  p.RecordReport(a0, 0, 85, 10);
  p.RecordReport(a1, 0, 84.8, 11);
  p.RecordReport(b0, 0, 80, 12);
  auto rung = p.RungTrials(all, 0);
  ASSERT_EQ(rung.size(), 4u);
  EXPECT_EQ(rung[0].state, RungTrialState::kReported);
  EXPECT_EQ(rung[0].cell, "lenet5 1x w4/a4 wrpn");
  EXPECT_EQ(rung[0].epoch, 2);
  EXPECT_EQ(rung[0].reported_ms, 10);
  EXPECT_EQ(rung[3].state, RungTrialState::kPending);
  // a (cheaper and better) promoted; b pruned: b0 now, b1 when it reports.
  RungDecision d = DecideRung(rung, {false, 0.5});
  ASSERT_EQ(d.promoted, (std::vector<int64_t>{1, 2}));
  const RungDecisionRecord row = p.SetDecision(1, 0, d, 100);
  EXPECT_EQ(row.epoch, 2);
  EXPECT_EQ(row.decided_ms, 100);
  EXPECT_EQ(p.TargetRung(a0), 1);
  EXPECT_EQ(p.StopEpoch(a0), 5);
  EXPECT_EQ(p.TargetRung(b1), 0) << "a pending seed of a pruned cell still runs to the rung";
  // Rung 2 holds only the promoted trials.
  EXPECT_EQ(p.RungTrials(all, 1).size(), 2u);
  // Past the last rung: to the end.
  p.RecordReport(a0, 1, 88, 200);
  p.RecordReport(a1, 1, 87, 201);
  p.SetDecision(1, 1, DecideRung(p.RungTrials(all, 1), {false, 0.5}), 300);
  EXPECT_EQ(p.TargetRung(a0), ParetoSweeps::kToTheEnd);
  EXPECT_EQ(p.StopEpoch(a0), 0);

  // retry --pruned: b0 trains to the end, and is no trial of later rungs.
  const RungDecisionRecord resumed = p.Resume(1, 0, 3);
  EXPECT_EQ(resumed.resumed_json, "[3]");
  EXPECT_EQ(p.StopEpoch(b0), 0);

  // The stored rows rebuild the same targets.
  ParetoSweeps q;
  ASSERT_TRUE(q.AddSweep(Pareto(1)));
  ASSERT_TRUE(q.LoadDecision(resumed).ok());
  EXPECT_EQ(q.TargetRung(a0), 1);
  EXPECT_EQ(q.StopEpoch(b0), 0);
  EXPECT_EQ(q.TargetRung(b1), 0);
}

TEST(ParetoSweeps, AReportAtTheRungCountsWhateverTheTrialDidSince) {
  ParetoSweeps p;
  ASSERT_TRUE(p.AddSweep(Pareto(1)));
  const TrialRecord failed_late = T(1, 1, 4, 0, TrialState::kFailed);
  const TrialRecord failed_early = T(2, 1, 4, 1, TrialState::kFailed);
  const TrialRecord cancelled = T(3, 2, 2, 0, TrialState::kCancelled);
  p.RecordReport(failed_late, 0, 85, 1);
  auto rung = p.RungTrials({&failed_late, &failed_early, &cancelled}, 0);
  ASSERT_EQ(rung.size(), 3u);
  EXPECT_EQ(rung[0].state, RungTrialState::kReported);
  EXPECT_EQ(rung[1].state, RungTrialState::kFailed);
  EXPECT_EQ(rung[2].state, RungTrialState::kCancelled);
}

TEST(ParetoSweeps, ParkedTrialsSayWhatTheyWaitFor) {
  ParetoSweeps p;
  ASSERT_TRUE(p.AddSweep(Pareto(1)));
  p.Park(7, 1, 0);
  EXPECT_TRUE(p.Parked(7));
  p.SetWaitReason(1, 0, "3 of 4 live trials reported", 0);
  EXPECT_EQ(p.WaitReason(7), "waiting for rung 1 (epoch 2): 3 of 4 live trials reported");
  EXPECT_EQ(p.UndecidedRungs().size(), 1u);
  EXPECT_EQ(p.NextDecisionMs(), 0);
  p.SetWaitReason(1, 0, "quorum", 5000);
  EXPECT_EQ(p.NextDecisionMs(), 5000);
  EXPECT_TRUE(p.Unpark(7));
  EXPECT_EQ(p.WaitReason(7), "");
  EXPECT_TRUE(p.UndecidedRungs().empty());
}

TEST(ParetoSweeps, CorruptStoredRowsNameTheRowAndTheField) {
  ParetoSweeps p;
  ASSERT_TRUE(p.AddSweep(Pareto(1)));
  RungDecisionRecord r{1, 0, 2, 10, RungDecisionToJson(RungDecision{}).dump(), "[]"};
  EXPECT_TRUE(p.LoadDecision(r).ok());
  RungDecisionRecord bad = r;
  bad.rung = 5;
  EXPECT_THAT(std::string(p.LoadDecision(bad).message()),
              HasSubstr("rung_decisions row (sweep 1, rung 5): rung: out of range"));
  bad = r;
  bad.decision_json = "{\"margin\": 1}";
  EXPECT_THAT(std::string(p.LoadDecision(bad).message()), HasSubstr("rung_decisions row (sweep 1, rung 0): decision_json."));
  bad = r;
  bad.resumed_json = "[\"x\"]";
  EXPECT_THAT(std::string(p.LoadDecision(bad).message()), HasSubstr("resumed_json: not a trial id: \"x\""));
  bad = r;
  bad.sweep_id = 9;
  EXPECT_THAT(std::string(p.LoadDecision(bad).message()), HasSubstr("not a pareto sweep"));
}

}  // namespace
}  // namespace wrpn::server
