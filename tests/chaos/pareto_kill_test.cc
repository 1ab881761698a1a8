// Issue 21: the coordinator SIGKILLed at a Pareto rung's decision (WRPN_CRASH_AT, inside its
// transaction and right after its COMMIT) decides the rung exactly once after the restart, from
// the stored reports: one decision row, one decision event, every trial either pruned at the rung
// with its stored top-1 there or on to the end, none lost and none run twice.
#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

using namespace std::chrono_literals;

TEST_F(ChaosTest, CoordinatorKilledAtARungDecisionDecidesItOnceAfterTheRestart) {
  int round = 0;
  for (const char* point : {"rung_decision.uncommitted", "rung_decision.committed"}) {
    SCOPED_TRACE(point);
    const std::string worker = "w-" + std::to_string(++round);
    crash_at_ = std::string(point) + ":1";
    StartCoordinator(Flags(3));
    if (HasFatalFailure()) return;
    json spec = SweepSpec(std::string("pareto ") + point, {1, 2}, {"32/32", "4/4", "2/2"}, 4, 3);
    spec["search"] = {{"mode", "pareto"}, {"rungs", {2}}, {"margin", 0.5}};
    auto sweep = Submit(spec);
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    ASSERT_NE(StartWorker(worker, {{"WRPN_FAKE_EPOCH_MS", "20"}}, {"--max-cpu-trials", "6"}), nullptr);
    const auto exit = WaitCoordinatorExit(60s);
    ASSERT_TRUE(exit.has_value()) << "the coordinator never reached " << point;
    EXPECT_THAT(coordinator_->StderrTail(), ::testing::HasSubstr(std::string("crash point '") + point + "' reached"));
    const DbCheck after_kill = CheckDatabase(db_path_);
    ASSERT_EQ(after_kill.integrity, "ok");
    ASSERT_THAT(after_kill.violations, ::testing::IsEmpty());
    crash_at_.clear();
    StartCoordinator();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(WaitForSweep(*sweep, 120s));

    const std::string id = std::to_string(*sweep);
    EXPECT_EQ(QueryCount(db_path_, "SELECT COUNT(*) FROM rung_decisions WHERE sweep_id=" + id), 1);
    EXPECT_EQ(QueryCount(db_path_, "SELECT COUNT(*) FROM events WHERE trial_id=0 AND sweep_id=" + id +
                                       " AND message LIKE 'rung 1 (epoch 2) decided:%'"),
              1);
    auto trials = ListTrials(*sweep);
    ASSERT_TRUE(trials.ok()) << trials.status();
    ASSERT_EQ(trials->size(), 6u);
    int pruned = 0;
    for (const auto& t : *trials) {
      SCOPED_TRACE("trial " + std::to_string(t.id()));
      auto full = GetTrial(t.id());
      ASSERT_TRUE(full.ok()) << full.status();
      int rung = 0, succeeded = 0;
      for (const auto& a : full->attempts()) {
        EXPECT_NE(a.outcome(), pb::ATTEMPT_RUNNING);
        rung += a.outcome() == pb::ATTEMPT_RUNG;
        succeeded += a.outcome() == pb::ATTEMPT_SUCCEEDED;
      }
      EXPECT_EQ(rung, 1) << "one run to the rung";
      if (t.state() == pb::TRIAL_PRUNED) {
        ++pruned;
        EXPECT_EQ(succeeded, 0);
        EXPECT_EQ(t.pruned_epoch(), 2);
        auto m = GetTrialMetrics(t.id());
        ASSERT_TRUE(m.ok()) << m.status();
        bool found = false;
        for (const auto& p : m->points()) {
          if (p.name() != "top1" || p.step() != 1) continue;
          found = true;
          EXPECT_DOUBLE_EQ(p.value(), t.pruned_top1());
        }
        EXPECT_TRUE(found) << "its top-1 at the rung is stored";
      } else {
        EXPECT_EQ(t.state(), pb::TRIAL_SUCCEEDED) << t.error();
        EXPECT_EQ(succeeded, 1);
      }
    }
    EXPECT_LT(pruned, 6) << "the front always goes on";
    const DbCheck db = CheckDatabase(db_path_);
    EXPECT_EQ(db.integrity, "ok");
    EXPECT_THAT(db.violations, ::testing::IsEmpty());
    EXPECT_EQ(db.duplicate_points, 0);
    Stopped(worker);
    workers_[worker]->Terminate();
    KillCoordinator();
  }
}

}  // namespace
}  // namespace wrpn::chaos
