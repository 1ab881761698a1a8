// Pareto-pruned sweeps through the coordinator core (server/coordinator_pareto.cc), driven like a
// worker would (no gRPC) on a fake clock: leases carry the rung, a stop at the rung parks the
// trial, the rung is decided (all reported, or a quorum and a quiet timeout), the promoted go on
// and the others end pruned; failures, cancellation, late reports, restarts (also with the
// decision's write failing) and `retry --pruned`.
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/coordinator.h"
#include "server/memory_store.h"
#include "tests/fakes/failing_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/server/coordinator_calls.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// 6 cells x 2 seeds; costs (uniform): 1x 2/2 0.06 < 1x 4/4 0.13 < 2x 2/2 0.21 < 2x 4/4 0.43
// < 1x 32/32 1 < 2x 32/32 3.4.
constexpr const char* kSpec = R"(
name: pruned
axes: {network: lenet5, width: [1, 2], precision: ["32/32", "4/4", "2/2"], seed: [0, 1]}
recipe: {epochs: 6}
search: {mode: pareto, rungs: [2, 4], margin: 0.5%s}
max_attempts: 2
)";

// Top-1 at the first rung by cell: 2x 2/2 (84) is 1 point below 1x 4/4 (85) at a lower cost, more
// than the margin: pruned. 1x 32/32 (85.8) is 0.2 below 2x 4/4: promoted. The rest are the front.
double Score(const pb::Trial& t) {
  std::map<std::pair<double, int>, double> by = {{{1, 2}, 80}, {{1, 4}, 85}, {{2, 2}, 84},
                                                 {{2, 4}, 86}, {{1, 32}, 85.8}, {{2, 32}, 87}};
  return by.at({t.width(), t.wbits()}) + (t.seed() == 0 ? 0.1 : -0.1);
}

class ParetoCoordinatorTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    c_.reset();
    registry_ = std::make_unique<MetricsRegistry>();
    CoordinatorOptions o;
    o.lease_ttl = 30s;
    auto c = Coordinator::Create(&failing_, &clock_, registry_.get(), o);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = *std::move(c);
  }

  int64_t Submit(const std::string& extra = "") {
    pb::SubmitSweepRequest req;
    req.set_spec_text(absl::StrReplaceAll(kSpec, {{"%s", extra}}));
    auto r = c_->SubmitSweep(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->sweep_id() : 0;
  }

  std::string Register() {
    pb::RegisterWorkerRequest req;
    req.set_name("cpu");
    req.set_address("cpu.local");
    req.set_max_cpu_trials(16);
    auto r = c_->RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->worker_id() : "";
  }

  std::vector<pb::Lease> Acquire(int n = 16) { return AcquireLeases(*c_, worker_, n); }

  pb::Trial Trial(int64_t id) {
    pb::GetTrialRequest req;
    req.set_trial_id(id);
    auto r = c_->GetTrial(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->trial() : pb::Trial();
  }

  // The trainer's epochs up to the lease's stop (top-1 `score` x epoch / stop), a checkpoint at
  // the stop, then `interrupted`, as wrpn-train reports a rung.
  absl::Status RunToRung(const pb::Lease& l, double score) {
    if (absl::Status st = TrainToStop(l, score); !st.ok()) return st;
    return Fail(l, "interrupted", absl::StrCat("interrupted at epoch ", l.stop_at_epoch()));
  }
  absl::Status TrainToStop(const pb::Lease& l, double score) {
    const int64_t stop = l.stop_at_epoch();
    for (int64_t e = l.resume_epoch(); e < stop; ++e) {
      pb::ReportMetricsRequest m;
      *m.mutable_lease() = RefOf(l);
      auto* p = m.add_points();
      p->set_name("top1");
      p->set_step(e);
      p->set_value(score * (e + 1) / stop);
      if (absl::Status st = c_->ReportMetrics(m).status(); !st.ok()) return st;
      pb::ReportCheckpointRequest ck;
      *ck.mutable_lease() = RefOf(l);
      ck.set_epoch(e + 1);
      ck.set_path(absl::StrCat("/ckpt/", l.trial_id(), "/", e + 1));
      if (absl::Status st = c_->ReportCheckpoint(ck).status(); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  void KeepAlive(const std::vector<pb::Lease>& leases) {
    pb::HeartbeatRequest hb;
    hb.set_worker_id(worker_);
    for (const auto& l : leases) *hb.add_leases()->mutable_lease() = RefOf(l);
    ASSERT_TRUE(c_->Heartbeat(hb).ok());
  }

  absl::Status Fail(const pb::Lease& l, const std::string& kind, const std::string& reason) {
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = RefOf(l);
    req.mutable_failure()->set_kind(kind);
    req.mutable_failure()->set_reason(reason);
    return c_->CompleteTrial(req).status();
  }

  absl::Status Finish(const pb::Lease& l, double top1) {
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = RefOf(l);
    req.mutable_result()->set_top1(top1);
    return c_->CompleteTrial(req).status();
  }

  std::vector<std::string> SweepEvents(int64_t sweep) {
    std::vector<std::string> out;
    auto events = store_.Events(sweep, 0, 100000);
    EXPECT_TRUE(events.ok()) << events.status();
    for (const auto& e : *events)
      if (e.trial_id == 0) out.push_back(e.message);
    return out;
  }

  std::map<pb::TrialState, int> States(int64_t sweep) {
    pb::ListTrialsRequest req;
    req.set_sweep_id(sweep);
    req.set_page_size(1000);
    auto r = c_->ListTrials(req);
    EXPECT_TRUE(r.ok()) << r.status();
    std::map<pb::TrialState, int> n;
    for (const auto& t : r->trials()) ++n[t.state()];
    return n;
  }

  FakeClock clock_;
  MemoryStore store_;
  FailingStore failing_{&store_};
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Coordinator> c_;
  std::string worker_;
};

TEST_F(ParetoCoordinatorTest, RungOneIsDecidedWhenAllReportedAndPrunesTheDominatedCell) {
  const int64_t sweep = Submit();
  worker_ = Register();
  auto leases = Acquire();
  ASSERT_EQ(leases.size(), 12u);
  for (const auto& l : leases) EXPECT_EQ(l.stop_at_epoch(), 2) << "every trial trains to rung 1 first";
  for (size_t i = 0; i + 1 < leases.size(); ++i) {
    ASSERT_TRUE(RunToRung(leases[i], Score(Trial(leases[i].trial_id()))).ok());
  }
  const pb::Trial parked = Trial(leases[0].trial_id());
  EXPECT_EQ(parked.state(), pb::TRIAL_QUEUED);
  EXPECT_THAT(parked.pending_reason(),
              HasSubstr("waiting for rung 1 (epoch 2): 11 of 12 live trials reported"));
  EXPECT_EQ(parked.attempts(), 1);
  EXPECT_TRUE(Acquire().empty()) << "a parked trial is not leased again before the decision";
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 0);

  ASSERT_TRUE(RunToRung(leases.back(), Score(Trial(leases.back().trial_id()))).ok());
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 2);
  EXPECT_EQ(States(sweep)[pb::TRIAL_QUEUED], 10);
  const std::vector<std::string> events = SweepEvents(sweep);
  ASSERT_FALSE(events.empty());
  EXPECT_THAT(events.back(), HasSubstr("rung 1 (epoch 2) decided: 5 of 6 cells promoted (margin 0.50 points)"));
  EXPECT_THAT(events.back(), HasSubstr("all 12 live trials reported"));
  EXPECT_THAT(events.back(), HasSubstr("pruned: lenet5 2x w2/a2 wrpn at 84.00 (1.00 below the front)"));
  for (const auto& l : leases) {
    const pb::Trial t = Trial(l.trial_id());
    if (t.width() == 2 && t.wbits() == 2) {
      EXPECT_EQ(t.state(), pb::TRIAL_PRUNED);
      EXPECT_DOUBLE_EQ(t.pruned_top1(), Score(t));
      EXPECT_EQ(t.pruned_epoch(), 2);
    } else {
      EXPECT_EQ(t.state(), pb::TRIAL_QUEUED);
      EXPECT_EQ(t.stop_at_epoch(), 4);
    }
  }
  pb::GetGridRequest g;
  g.set_sweep_id(sweep);
  auto grid = c_->GetGrid(g);
  ASSERT_TRUE(grid.ok()) << grid.status();
  int pruned_cells = 0;
  for (const auto& cell : grid->cells()) {
    if (cell.state() != pb::TRIAL_PRUNED) continue;
    ++pruned_cells;
    EXPECT_EQ(cell.width(), 2);
    EXPECT_EQ(cell.wbits(), 2);
    EXPECT_DOUBLE_EQ(cell.pruned_top1(), 84.0);
    EXPECT_EQ(cell.pruned_epoch(), 2);
    EXPECT_FALSE(cell.has_final_top1());
  }
  EXPECT_EQ(pruned_cells, 1);
  EXPECT_THAT(registry_->Render(), HasSubstr("wrpn_rung_decisions_total 1"));
  EXPECT_THAT(registry_->Render(), HasSubstr("wrpn_trials{state=\"pruned\"} 2"));

  // The promoted resume from their rung checkpoint to rung 2, with a fresh attempt budget.
  auto next = Acquire();
  ASSERT_EQ(next.size(), 10u);
  for (const auto& l : next) {
    EXPECT_EQ(l.stop_at_epoch(), 4);
    EXPECT_EQ(l.resume_epoch(), 2);
    EXPECT_EQ(l.attempt(), 2);
  }
}

TEST_F(ParetoCoordinatorTest, AFailedTrialDoesNotBlockItsRungAndTheFrontGoesToTheEnd) {
  const int64_t sweep = Submit();
  worker_ = Register();
  auto leases = Acquire();
  ASSERT_EQ(leases.size(), 12u);
  // One trial fails for good (config errors are not retried): the rung is decided without it.
  ASSERT_TRUE(Fail(leases[0], "config", "bad recipe").ok());
  for (size_t i = 1; i < leases.size(); ++i)
    ASSERT_TRUE(RunToRung(leases[i], Score(Trial(leases[i].trial_id()))).ok());
  EXPECT_THAT(SweepEvents(sweep).back(), HasSubstr("all 11 live trials reported"));
  // Rung 2 with the same scores: the same cells go on; then to the end.
  auto second = Acquire();
  ASSERT_EQ(second.size(), 9u);
  for (const auto& l : second) ASSERT_TRUE(RunToRung(l, Score(Trial(l.trial_id()))).ok());
  EXPECT_THAT(SweepEvents(sweep).back(), HasSubstr("rung 2 (epoch 4) decided"));
  auto last = Acquire();
  ASSERT_FALSE(last.empty());
  for (const auto& l : last) {
    EXPECT_EQ(l.stop_at_epoch(), 0) << "past the last rung: to the end";
    EXPECT_EQ(l.resume_epoch(), 4);
    ASSERT_TRUE(Finish(l, Score(Trial(l.trial_id()))).ok());
  }
  auto n = States(sweep);
  EXPECT_EQ(n[pb::TRIAL_FAILED], 1);
  EXPECT_EQ(n[pb::TRIAL_SUCCEEDED] + n[pb::TRIAL_PRUNED], 11);
  EXPECT_EQ(n[pb::TRIAL_QUEUED] + n[pb::TRIAL_RUNNING], 0);

  // retry --pruned: the pruned trials resume from their rung to the end; a plain retry does not.
  pb::RetrySweepRequest plain;
  plain.set_sweep_id(sweep);
  auto r = c_->RetrySweep(plain);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requeued_trials(), 1);  // the failed one
  auto failed_again = Acquire();
  ASSERT_EQ(failed_again.size(), 1u);
  EXPECT_EQ(failed_again[0].stop_at_epoch(), 2) << "a retried trial goes through the rungs";
  const int pruned = n[pb::TRIAL_PRUNED];
  pb::RetrySweepRequest with_pruned;
  with_pruned.set_sweep_id(sweep);
  with_pruned.set_pruned(true);
  r = c_->RetrySweep(with_pruned);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->requeued_trials(), pruned);
  auto resumed = Acquire();
  ASSERT_EQ(static_cast<int>(resumed.size()), pruned);
  for (const auto& l : resumed) {
    EXPECT_EQ(l.stop_at_epoch(), 0);
    EXPECT_EQ(l.resume_epoch(), 2);
  }
  Open();  // the resumption is stored with the decision
  for (const auto& l : resumed) EXPECT_EQ(Trial(l.trial_id()).stop_at_epoch(), 0);
}

TEST_F(ParetoCoordinatorTest, AQuorumDecidesAfterTheQuietTimeoutAndLateReportsFollowTheFront) {
  const int64_t sweep = Submit(", quorum: 0.5, rung_timeout: 60");
  worker_ = Register();
  auto leases = Acquire();
  ASSERT_EQ(leases.size(), 12u);
  // Seed 0 of every cell reports; seed 1 is slow.
  std::vector<pb::Lease> slow;
  for (const auto& l : leases) {
    if (Trial(l.trial_id()).seed() == 0) ASSERT_TRUE(RunToRung(l, Score(Trial(l.trial_id()))).ok());
    else slow.push_back(l);
  }
  EXPECT_THAT(Trial(leases[0].trial_id()).pending_reason(), HasSubstr("deciding after 60 s without a report"));
  for (int i = 0; i < 3; ++i) {  // 59 s, the slow ones keeping their leases alive
    clock_.Advance(i < 2 ? 20s : 19s);
    KeepAlive(slow);
  }
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(SweepEvents(sweep).size(), 1u) << "only the submission";
  clock_.Advance(2s);
  KeepAlive(slow);
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_THAT(SweepEvents(sweep).back(), HasSubstr("6 of 12 live trials reported; quorum of 6 reached"));
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 1);
  // The late seeds follow their cell: 2x 2/2's is pruned when it reports, the others go on.
  for (const auto& l : slow) ASSERT_TRUE(RunToRung(l, Score(Trial(l.trial_id()))).ok());
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 2);
  EXPECT_EQ(States(sweep)[pb::TRIAL_QUEUED], 10);
}

TEST_F(ParetoCoordinatorTest, ParkedTrialsAndDecisionsSurviveRestartsAndAFailedDecisionWrite) {
  const int64_t sweep = Submit();
  worker_ = Register();
  auto leases = Acquire();
  ASSERT_EQ(leases.size(), 12u);
  for (size_t i = 0; i + 1 < leases.size(); ++i)
    ASSERT_TRUE(RunToRung(leases[i], Score(Trial(leases[i].trial_id()))).ok());
  Open();  // mid-rung: 11 parked, one running
  EXPECT_THAT(Trial(leases[0].trial_id()).pending_reason(), HasSubstr("waiting for rung 1 (epoch 2)"));
  EXPECT_TRUE(Acquire().empty());
  // The decision's write fails (as if the coordinator died before its commit): nothing changed.
  const pb::Lease& last = leases.back();
  ASSERT_TRUE(TrainToStop(last, Score(Trial(last.trial_id()))).ok());
  failing_.fail_applies = 1;
  EXPECT_FALSE(Fail(last, "interrupted", "interrupted at epoch 2").ok());
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 0);
  EXPECT_EQ(Trial(last.trial_id()).state(), pb::TRIAL_RUNNING);
  // The worker reports again: decided once.
  ASSERT_TRUE(Fail(last, "interrupted", "interrupted at epoch 2").ok());
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 2);
  int decisions = 0;
  for (const auto& e : SweepEvents(sweep)) decisions += e.find("decided") != std::string::npos;
  EXPECT_EQ(decisions, 1);
  Open();  // after the decision: pruned stay pruned, the promoted are leased to rung 2
  EXPECT_EQ(States(sweep)[pb::TRIAL_PRUNED], 2);
  auto next = Acquire();
  ASSERT_EQ(next.size(), 10u);
  for (const auto& l : next) EXPECT_EQ(l.stop_at_epoch(), 4);
}

TEST_F(ParetoCoordinatorTest, CancellingTheSweepCancelsParkedTrials) {
  const int64_t sweep = Submit();
  worker_ = Register();
  auto leases = Acquire();
  for (size_t i = 0; i < 6; ++i) ASSERT_TRUE(RunToRung(leases[i], Score(Trial(leases[i].trial_id()))).ok());
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  ASSERT_TRUE(c_->CancelSweep(cancel).ok());
  EXPECT_EQ(States(sweep)[pb::TRIAL_CANCELLED], 12);
  EXPECT_TRUE(Acquire().empty());
  Open();
  EXPECT_EQ(States(sweep)[pb::TRIAL_CANCELLED], 12);
  EXPECT_TRUE(Acquire().empty());
}

TEST_F(ParetoCoordinatorTest, AGridSweepIsUntouched) {
  pb::SubmitSweepRequest req;
  req.set_spec_text("name: g\naxes: {network: lenet5, width: [1], precision: [\"4/4\"]}\nrecipe: {epochs: 3}\n");
  ASSERT_TRUE(c_->SubmitSweep(req).ok());
  worker_ = Register();
  auto leases = Acquire();
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].stop_at_epoch(), 0);
  // An interruption at any epoch is the ordinary kind: re-queued, counted.
  ASSERT_TRUE(Fail(leases[0], "interrupted", "drained").ok());
  EXPECT_EQ(Trial(leases[0].trial_id()).pending_reason(), "waiting for a free worker");
}

}  // namespace
}  // namespace wrpn::server
