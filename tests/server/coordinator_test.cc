// The coordinator core driven directly (no gRPC) with a fake clock.
#include "server/coordinator.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/trainer_protocol.h"
#include "common/trial_config.h"
#include "server/memory_store.h"
#include "server/sqlite_store.h"
#include "server/validate.h"
#include "tests/fakes/failing_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/server/coordinator_calls.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kCpuSpec = R"(
name: quick
axes: {network: lenet5, width: [1, 2], precision: ["32/32", "4/4"]}
recipe: {epochs: 2}
max_attempts: 2
)";

std::string PaperPath() { return std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json"; }

class CoordinatorTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    opts_.lease_ttl = 30s;
    opts_.paper_tables_path = PaperPath();
    c_.reset();
    registry_ = std::make_unique<MetricsRegistry>();
    auto c = Coordinator::Create(store_.get(), &clock_, registry_.get(), opts_);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = *std::move(c);
  }

  int64_t Submit(const std::string& text) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    auto r = c_->SubmitSweep(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->sweep_id() : 0;
  }

  std::string Register(const std::string& name, int gpus = 0, int cpu_slots = 1) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_address(name + ".local");
    for (int i = 0; i < gpus; ++i) req.add_gpus()->set_index(i);
    req.set_max_cpu_trials(cpu_slots);
    auto r = c_->RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->worker_id();
  }

  std::vector<pb::Lease> Acquire(const std::string& worker, int n = 1, int free_gpus = 0) {
    return AcquireLeases(*c_, worker, n, free_gpus);
  }

  static pb::LeaseRef Ref(const pb::Lease& l) { return RefOf(l); }

  absl::Status Metrics(const pb::Lease& l, const std::string& name, int64_t step, double v) {
    pb::ReportMetricsRequest req;
    *req.mutable_lease() = Ref(l);
    auto* p = req.add_points();
    p->set_name(name);
    p->set_step(step);
    p->set_value(v);
    return c_->ReportMetrics(req).status();
  }

  absl::Status Complete(const pb::Lease& l, double top1) {
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = Ref(l);
    req.mutable_result()->set_top1(top1);
    req.mutable_result()->set_top5(top1 + 5);
    return c_->CompleteTrial(req).status();
  }

  absl::Status Fail(const pb::Lease& l, const std::string& kind, const std::string& reason) {
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = Ref(l);
    req.mutable_failure()->set_kind(kind);
    req.mutable_failure()->set_reason(reason);
    return c_->CompleteTrial(req).status();
  }

  pb::GetTrialResponse Trial(int64_t id) {
    pb::GetTrialRequest req;
    req.set_trial_id(id);
    auto r = c_->GetTrial(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  pb::Sweep Sweep(int64_t id) {
    pb::GetSweepRequest req;
    req.set_sweep_id(id);
    return c_->GetSweep(req)->sweep();
  }

  std::vector<pb::WorkerCommand> Heartbeat(const std::string& worker,
                                           const std::vector<pb::Lease>& leases) {
    pb::HeartbeatRequest req;
    req.set_worker_id(worker);
    for (const auto& l : leases) *req.add_leases()->mutable_lease() = Ref(l);
    auto r = c_->Heartbeat(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return {r->commands().begin(), r->commands().end()};
  }

  CoordinatorOptions opts_;
  FakeClock clock_;
  std::unique_ptr<Store> store_ = std::make_unique<MemoryStore>();
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(CoordinatorTest, InvalidSpecWritesNothing) {
  pb::SubmitSweepRequest req;
  req.set_spec_text("axes: {network: lenet5, widht: [1], precision: [[4, 4]]}");
  auto r = c_->SubmitSweep(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("did you mean 'width'"));
  EXPECT_EQ(c_->ListSweeps({})->sweeps_size(), 0);
  EXPECT_TRUE(store_->Load()->trials.empty());

  pb::SubmitSweepRequest empty;
  EXPECT_EQ(c_->SubmitSweep(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, ProtoSpecIsValidatedLikeText) {
  pb::SubmitSweepRequest req;
  auto* axes = req.mutable_spec()->add_axes();
  axes->add_network("lenet5");
  axes->add_width(1);
  axes->add_wbits(4);
  axes->add_wbits(2);
  axes->add_abits(4);
  axes->add_seed(1);
  axes->add_seed(2);
  req.mutable_spec()->mutable_recipe()->set_epochs(3);
  req.mutable_spec()->mutable_dataset()->set_train_subset(500);
  req.set_dry_run(true);
  auto r = c_->SubmitSweep(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trial_count(), 4);
  EXPECT_EQ(r->sweep_id(), 0);  // dry run

  req.mutable_spec()->mutable_axes(0)->set_width(0, 9);
  r = c_->SubmitSweep(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("axes.width: 9 is out of range (0, 8]"));
  req.mutable_spec()->mutable_axes(0)->set_width(0, 1);
  req.mutable_spec()->mutable_recipe()->set_epochs(-1);
  r = c_->SubmitSweep(req);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("recipe.epochs"));
}

TEST_F(CoordinatorTest, LeaseCarriesTrialConfig) {
  int64_t sweep = Submit(kCpuSpec);
  std::string w = Register("cpu");
  auto leases = Acquire(w);
  ASSERT_EQ(leases.size(), 1u);
  const pb::Lease& l = leases[0];
  EXPECT_EQ(l.sweep_id(), sweep);
  EXPECT_EQ(l.attempt(), 1);
  EXPECT_GT(l.fencing_token(), 0);
  auto cfg = TrialConfigFromJsonText(l.trial_config_json());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->network, "lenet5");
  EXPECT_EQ(cfg->epochs, 2);
  EXPECT_EQ(cfg->width, 1);
  EXPECT_EQ(cfg->wbits, 32);
  EXPECT_TRUE(l.resume_checkpoint().empty());
  EXPECT_EQ(Trial(l.trial_id()).trial().state(), pb::TRIAL_RUNNING);
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_RUNNING);
  // One CPU slot: no second lease until the first ends.
  EXPECT_TRUE(Acquire(w).empty());
}

TEST_F(CoordinatorTest, ExpiredLeaseRequeuesWithCheckpointAndFencesOldAttempt) {
  Submit(R"(
axes: {network: lenet5, width: 1, precision: ["4/4"]}
max_attempts: 2
)");
  std::string w = Register("w");
  auto first = Acquire(w);
  ASSERT_EQ(first.size(), 1u);
  const pb::Lease a1 = first[0];
  ASSERT_TRUE(Metrics(a1, "top1", 1, 40).ok());
  pb::ReportCheckpointRequest ck;
  *ck.mutable_lease() = Ref(a1);
  ck.set_epoch(1);
  ck.set_path("/ckpt/t1/epoch1.pt");
  ASSERT_TRUE(c_->ReportCheckpoint(ck).ok());

  // A heartbeat inside the TTL keeps the lease alive past the original deadline.
  clock_.Advance(20s);
  pb::HeartbeatRequest hb;
  hb.set_worker_id(w);
  auto* progress = hb.add_leases();
  *progress->mutable_lease() = Ref(a1);
  progress->set_epoch(1);
  progress->set_fraction(0.5);
  auto hr = c_->Heartbeat(hb);
  ASSERT_TRUE(hr.ok());
  EXPECT_EQ(hr->commands_size(), 0);
  EXPECT_EQ(Trial(a1.trial_id()).trial().progress_epoch(), 1);
  EXPECT_DOUBLE_EQ(Trial(a1.trial_id()).trial().progress_fraction(), 0.5);
  clock_.Advance(20s);
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(Trial(a1.trial_id()).trial().state(), pb::TRIAL_RUNNING);

  // Silence for longer than the TTL: the lease expires and the trial is re-queued.
  clock_.Advance(31s);
  ASSERT_TRUE(c_->Tick().ok());
  auto t = Trial(a1.trial_id());
  EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED);
  ASSERT_EQ(t.attempts_size(), 1);
  EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
  EXPECT_THAT(t.trial().error(), HasSubstr("expired"));

  std::string w2 = Register("w2");
  auto second = Acquire(w2);
  ASSERT_EQ(second.size(), 1u);
  const pb::Lease a2 = second[0];
  EXPECT_EQ(a2.trial_id(), a1.trial_id());
  EXPECT_EQ(a2.attempt(), 2);
  EXPECT_GT(a2.fencing_token(), a1.fencing_token());
  EXPECT_EQ(a2.resume_checkpoint(), "/ckpt/t1/epoch1.pt");
  EXPECT_EQ(a2.resume_epoch(), 1);

  // Late calls from attempt 1 are rejected and change nothing.
  absl::Status late = Metrics(a1, "top1", 2, 99);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Complete(a1, 99).code(), absl::StatusCode::kFailedPrecondition);
  pb::LeaseRef forged = Ref(a2);
  forged.set_fencing_token(a1.fencing_token());
  pb::ReportMetricsRequest req;
  *req.mutable_lease() = forged;
  req.add_points()->set_name("top1");
  EXPECT_EQ(c_->ReportMetrics(req).status().code(), absl::StatusCode::kFailedPrecondition);
  pb::GetTrialMetricsRequest mreq;
  mreq.set_trial_id(a1.trial_id());
  EXPECT_EQ(c_->GetTrialMetrics(mreq)->points_size(), 1);
  EXPECT_EQ(Trial(a1.trial_id()).trial().state(), pb::TRIAL_RUNNING);
  // The old worker is told to forget its lease.
  auto cmds = Heartbeat(w, {a1});
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind(), pb::WorkerCommand::FORGET_LEASE);

  // Attempt 2 expires too: max_attempts (2) reached, the trial fails with the last reason.
  clock_.Advance(31s);
  ASSERT_TRUE(c_->Tick().ok());
  t = Trial(a1.trial_id());
  EXPECT_EQ(t.trial().state(), pb::TRIAL_FAILED);
  EXPECT_THAT(t.trial().error(), HasSubstr(a2.lease_id()));
  EXPECT_EQ(t.attempts_size(), 2);
  EXPECT_TRUE(Acquire(w2).empty());
  std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("wrpn_lease_expirations_total 2"));
  EXPECT_THAT(text, HasSubstr("wrpn_trial_attempts_total{outcome=\"expired\"} 2"));
}

TEST_F(CoordinatorTest, FailureKindsAndRetrySweep) {
  int64_t sweep = Submit(R"(
axes: {network: lenet5, width: 1, precision: ["4/4", "2/2"]}
max_attempts: 3
)");
  std::string w = Register("w", 0, 2);
  auto leases = Acquire(w, 2);
  ASSERT_EQ(leases.size(), 2u);
  ASSERT_TRUE(Fail(leases[0], "config", "bad lr").ok());
  ASSERT_TRUE(Fail(leases[1], "internal", "segfault").ok());
  EXPECT_EQ(Trial(leases[0].trial_id()).trial().state(), pb::TRIAL_FAILED);  // final
  EXPECT_EQ(Trial(leases[0].trial_id()).trial().error(), "config: bad lr");
  EXPECT_EQ(Trial(leases[1].trial_id()).trial().state(), pb::TRIAL_QUEUED);  // retried
  auto again = Acquire(w, 2);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].trial_id(), leases[1].trial_id());
  ASSERT_TRUE(Complete(again[0], 80).ok());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_FAILED);

  pb::RetrySweepRequest retry;
  retry.set_sweep_id(sweep);
  auto r = c_->RetrySweep(retry);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->requeued_trials(), 1);  // the succeeded trial stays
  auto third = Acquire(w);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].trial_id(), leases[0].trial_id());
  EXPECT_EQ(third[0].attempt(), 2);
  ASSERT_TRUE(Complete(third[0], 70).ok());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_SUCCEEDED);
}

// A worker that cannot start its trainer hands the trial back: leased again at once, by any
// worker, and those attempts leave the trial's max_attempts whole.
TEST_F(CoordinatorTest, LaunchFailuresAreTheWorkersAndLeaveTheTrialsAttemptsWhole) {
  opts_.retry_backoff = 10s;
  Open();
  Submit("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}\nmax_attempts: 2\n");
  const std::string w = Register("w");
  for (int i = 1; i <= 4; ++i) {
    auto l = Acquire(w);
    ASSERT_EQ(l.size(), 1u) << "launch failure " << i << " held the trial back";
    EXPECT_EQ(l[0].attempt(), i);
    ASSERT_TRUE(Fail(l[0], "launch", "worker w cannot start rank 0: launch: 'x': no file").ok());
    EXPECT_EQ(Trial(l[0].trial_id()).trial().state(), pb::TRIAL_QUEUED);
  }
  auto l = Acquire(w);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_TRUE(Fail(l[0], "internal", "segfault").ok());
  EXPECT_EQ(Trial(l[0].trial_id()).trial().state(), pb::TRIAL_QUEUED);
  Open();  // the uncounted attempts stay uncounted across a restart
  clock_.Advance(10s);
  l = Acquire(w);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].attempt(), 6);
  ASSERT_TRUE(Fail(l[0], "internal", "segfault").ok());
  const pb::GetTrialResponse t = Trial(l[0].trial_id());
  EXPECT_EQ(t.trial().state(), pb::TRIAL_FAILED) << "two counted attempts: max_attempts 2";
  EXPECT_EQ(t.trial().error(), "internal: segfault");
  EXPECT_EQ(t.attempts(0).failure_kind(), pb::FAILURE_KIND_LAUNCH);
}

TEST_F(CoordinatorTest, CancelReachesTheWorkerThroughHeartbeat) {
  int64_t sweep = Submit(kCpuSpec);
  std::string w = Register("w");
  auto leases = Acquire(w);
  ASSERT_EQ(leases.size(), 1u);
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  auto r = c_->CancelSweep(cancel);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cancelled_trials(), 4);
  auto cmds = Heartbeat(w, leases);
  ASSERT_GE(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind(), pb::WorkerCommand::CANCEL_TRIAL);
  EXPECT_EQ(cmds[0].lease().lease_id(), leases[0].lease_id());
  EXPECT_EQ(cmds[0].trial_id(), leases[0].trial_id());
  EXPECT_EQ(Sweep(sweep).state(), pb::SWEEP_CANCELLED);
  EXPECT_EQ(Complete(leases[0], 50).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Acquire(w).empty());
}

TEST_F(CoordinatorTest, GangSchedulingIsAllOrNothing) {
  Submit(R"(
axes: {network: resnet20, width: 1, precision: ["4/4"]}
resources: {gpus_per_node: 2, nodes: 2}
)");
  std::string a = Register("a", 2);
  EXPECT_TRUE(Acquire(a, 1, 2).empty());
  pb::ListTrialsRequest lt;
  lt.set_sweep_id(1);
  auto trials = c_->ListTrials(lt);
  ASSERT_EQ(trials->trials_size(), 1);
  EXPECT_EQ(trials->trials(0).pending_reason(),
            "only 1 worker has 2 GPUs; the trial needs 2 nodes");
  std::string b = Register("b", 2);
  EXPECT_EQ(c_->ListTrials(lt)->trials(0).pending_reason(), "waiting for a free worker");
  auto la = Acquire(a, 1, 2);
  ASSERT_EQ(la.size(), 1u);
  EXPECT_EQ(la[0].rendezvous().nnodes(), 2);
  EXPECT_EQ(la[0].rendezvous().node_rank(), 0);
  EXPECT_EQ(la[0].rendezvous().world_size(), 4);
  EXPECT_EQ(la[0].rendezvous().master_addr(), "a.local");
  EXPECT_EQ(la[0].rendezvous().master_port(), 0) << "rank 0 picks the port";
  EXPECT_FALSE(la[0].rendezvous().single_step()) << "one lease per worker";
  // b's part waits until rank 0 has reported the port its store listens on.
  EXPECT_TRUE(Acquire(b, 1, 2).empty());
  pb::ReportRendezvousRequest rv;
  *rv.mutable_lease() = Ref(la[0]);
  // A port out of range is refused at the edge (validate.cc), before the core sees it.
  rv.set_master_port(0);
  EXPECT_EQ(ValidateRequest(rv).code(), absl::StatusCode::kInvalidArgument);
  rv.set_master_port(70000);
  EXPECT_EQ(ValidateRequest(rv).code(), absl::StatusCode::kInvalidArgument);
  rv.set_master_port(41234);
  rv.mutable_lease()->set_fencing_token(la[0].fencing_token() + 1);
  EXPECT_EQ(c_->ReportRendezvous(rv).status().code(), absl::StatusCode::kFailedPrecondition);
  *rv.mutable_lease() = Ref(la[0]);
  ASSERT_TRUE(c_->ReportRendezvous(rv).ok());
  EXPECT_TRUE(c_->ReportRendezvous(rv).ok()) << "the same report again is harmless";
  rv.set_master_port(41235);
  EXPECT_EQ(c_->ReportRendezvous(rv).status().code(), absl::StatusCode::kFailedPrecondition);
  auto lb = Acquire(b, 1, 2);
  ASSERT_EQ(lb.size(), 1u);
  EXPECT_EQ(lb[0].trial_id(), la[0].trial_id());
  EXPECT_EQ(lb[0].fencing_token(), la[0].fencing_token());
  EXPECT_EQ(lb[0].rendezvous().node_rank(), 1);
  EXPECT_EQ(lb[0].rendezvous().master_addr(), "a.local");
  EXPECT_EQ(lb[0].rendezvous().master_port(), 41234);
  // Only rank 0 hosts the store.
  *rv.mutable_lease() = Ref(lb[0]);
  rv.set_master_port(41234);
  EXPECT_EQ(c_->ReportRendezvous(rv).status().code(), absl::StatusCode::kFailedPrecondition);

  // b goes silent: the whole attempt expires and a is told to stop its part.
  clock_.Advance(20s);
  Heartbeat(a, la);
  clock_.Advance(15s);
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(Trial(la[0].trial_id()).trial().state(), pb::TRIAL_QUEUED);
  auto cmds = Heartbeat(a, la);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind(), pb::WorkerCommand::FORGET_LEASE);
}

TEST_F(CoordinatorTest, AWorkerStartingSlurmStepsGetsAGangAsOneLease) {
  Submit(R"(
axes: {network: lenet5, width: 1, precision: ["4/4"]}
resources: {gpus_per_node: 1, nodes: 2}
)");
  pb::RegisterWorkerRequest req;
  req.set_name("slurm-7-n1");
  req.set_address("n1");
  req.add_gpus()->set_index(0);
  (*req.mutable_labels())["slurm.step_nodes"] = "2";
  auto w = c_->RegisterWorker(req);
  ASSERT_TRUE(w.ok()) << w.status();
  auto l = Acquire(w->worker_id(), 1, 1);
  ASSERT_EQ(l.size(), 1u) << "no second worker needed";
  EXPECT_TRUE(l[0].rendezvous().single_step());
  EXPECT_EQ(l[0].rendezvous().nnodes(), 2);
  EXPECT_EQ(l[0].rendezvous().node_rank(), 0);
  EXPECT_EQ(l[0].rendezvous().worker_ids_size(), 1);
  EXPECT_EQ(Trial(l[0].trial_id()).attempts(0).worker_ids_size(), 1);
}

TEST_F(CoordinatorTest, DrainingWorkerGetsNoNewLeases) {
  Submit(kCpuSpec);
  std::string w = Register("w", 0, 4);
  auto first = Acquire(w);
  ASSERT_EQ(first.size(), 1u);
  pb::DrainWorkerRequest drain;
  drain.set_worker_id(w);
  drain.set_drain(true);
  auto r = c_->DrainWorker(drain);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->worker().state(), "draining");
  EXPECT_TRUE(Acquire(w, 4).empty());
  auto cmds = Heartbeat(w, first);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind(), pb::WorkerCommand::DRAIN);
  ASSERT_TRUE(Complete(first[0], 60).ok());  // running trials finish normally
  drain.set_drain(false);
  ASSERT_TRUE(c_->DrainWorker(drain).ok());
  EXPECT_EQ(Acquire(w, 4).size(), 3u);
  drain.set_worker_id("w-404");
  EXPECT_EQ(c_->DrainWorker(drain).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, TrialLogsAreFencedPagedAndBounded) {
  Submit(R"(
axes: {network: lenet5, width: 1, precision: ["4/4"]}
max_attempts: 2
)");
  std::string w = Register("w");
  auto first = Acquire(w);
  ASSERT_EQ(first.size(), 1u);
  pb::ReportLogsRequest logs;
  *logs.mutable_lease() = Ref(first[0]);
  logs.set_rank(0);
  for (int i = 0; i < 3; ++i) logs.add_lines("epoch " + std::to_string(i));
  ASSERT_TRUE(c_->ReportLogs(logs).ok());
  pb::GetTrialLogsRequest get;
  get.set_trial_id(first[0].trial_id());
  get.set_after_seq(1);
  auto r = c_->GetTrialLogs(get);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->lines_size(), 2);
  EXPECT_EQ(r->lines(0).line(), "epoch 1");
  EXPECT_EQ(r->lines(0).attempt(), 1);
  EXPECT_EQ(r->last_seq(), 3);
  EXPECT_FALSE(r->trial_finished());

  clock_.Advance(31s);  // attempt 1 expires: its late log lines are refused
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(c_->ReportLogs(logs).status().code(), absl::StatusCode::kFailedPrecondition);
  auto second = Acquire(w);
  ASSERT_EQ(second.size(), 1u);
  *logs.mutable_lease() = Ref(second[0]);
  logs.clear_lines();
  for (int64_t i = 0; i < Coordinator::kMaxLogLines + 10; ++i) logs.add_lines("x");
  ASSERT_TRUE(c_->ReportLogs(logs).ok());
  get.set_after_seq(0);
  r = c_->GetTrialLogs(get);
  EXPECT_EQ(r->lines_size(), Coordinator::kMaxLogLines);
  EXPECT_EQ(r->dropped(), 13);
  EXPECT_EQ(r->lines(0).attempt(), 2);
  ASSERT_TRUE(Complete(second[0], 70).ok());
  EXPECT_TRUE(c_->GetTrialLogs(get)->trial_finished());
  get.set_trial_id(999);
  EXPECT_EQ(c_->GetTrialLogs(get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, PriorityThenSubmissionOrderAndSweepFilters) {
  int64_t first = Submit("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}");
  int64_t second = Submit("axes: {network: lenet5, width: 2, precision: [\"4/4\"]}");
  int64_t urgent = Submit("axes: {network: lenet5, width: 3, precision: [\"4/4\"]}\npriority: 5");
  std::string w = Register("w", 0, 3);
  auto leases = Acquire(w, 3);
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0].sweep_id(), urgent);
  EXPECT_EQ(leases[1].sweep_id(), first);
  EXPECT_EQ(leases[2].sweep_id(), second);
  ASSERT_TRUE(Complete(leases[1], 60).ok());
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(second);
  ASSERT_TRUE(c_->CancelSweep(cancel).ok());

  pb::ListSweepsRequest req;
  req.set_state(pb::SWEEP_SUCCEEDED);
  auto done = c_->ListSweeps(req);
  ASSERT_EQ(done->sweeps_size(), 1);
  EXPECT_EQ(done->sweeps(0).id(), first);
  req.set_state(pb::SWEEP_CANCELLED);
  EXPECT_EQ(c_->ListSweeps(req)->sweeps(0).id(), second);
  req.set_state(pb::SWEEP_RUNNING);
  EXPECT_EQ(c_->ListSweeps(req)->sweeps(0).id(), urgent);
  pb::ListSweepsRequest page;
  page.set_page_size(2);
  auto p1 = c_->ListSweeps(page);
  ASSERT_EQ(p1->sweeps_size(), 2);
  ASSERT_FALSE(p1->next_page_token().empty());
  page.set_page_token(p1->next_page_token());
  auto p2 = c_->ListSweeps(page);
  ASSERT_EQ(p2->sweeps_size(), 1);
  EXPECT_EQ(p2->sweeps(0).id(), urgent);
  EXPECT_TRUE(p2->next_page_token().empty());
  page.set_page_size(-1);  // refused at the edge
  EXPECT_EQ(ValidateRequest(page).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, TrialNoWorkerCanFitStaysQueuedWithReason) {
  Submit(R"(
axes: {network: resnet34, width: 1, precision: ["32/32"]}
resources: {gpus_per_node: 8}
)");
  std::string w = Register("w", 1);
  EXPECT_TRUE(Acquire(w, 1, 1).empty());
  auto t = Trial(1);
  EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED);
  EXPECT_EQ(t.trial().pending_reason(), "no worker has 8 GPUs");
}

TEST_F(CoordinatorTest, GridAggregatesSeedsAndShowsPaperValues) {
  int64_t sweep = Submit(R"(
axes: {network: alexnet, width: [1, 2], precision: ["32/32", "1/1"], seed: [1, 2]}
recipe: {epochs: 1}
)");
  std::string w = Register("w", 0, 16);
  auto leases = Acquire(w, 16);
  ASSERT_EQ(leases.size(), 8u);
  for (const auto& l : leases) {
    auto cfg = TrialConfigFromJsonText(l.trial_config_json());
    ASSERT_TRUE(cfg.ok());
    ASSERT_TRUE(Metrics(l, "top1", 1, 10.0 + static_cast<double>(cfg->seed)).ok());
    ASSERT_TRUE(Complete(l, 50.0 + static_cast<double>(cfg->seed) * 2).ok());
  }
  pb::GetGridRequest req;
  req.set_sweep_id(sweep);
  auto grid = c_->GetGrid(req);
  ASSERT_TRUE(grid.ok()) << grid.status();
  ASSERT_EQ(grid->cells_size(), 4);
  const pb::GridCell& c = grid->cells(0);
  EXPECT_EQ(c.network(), "alexnet");
  EXPECT_EQ(c.width(), 1);
  EXPECT_EQ(c.wbits(), 32);
  EXPECT_EQ(c.state(), pb::TRIAL_SUCCEEDED);
  ASSERT_EQ(c.seeds_size(), 2);
  EXPECT_DOUBLE_EQ(c.final_top1(), 53.0);  // seeds 1 and 2: 52 and 54
  EXPECT_NEAR(c.final_top1_std(), 1.41421356, 1e-6);
  EXPECT_DOUBLE_EQ(c.best_top1(), 53.0);
  EXPECT_DOUBLE_EQ(c.paper_top1(), 57.2);
  EXPECT_EQ(c.paper_table(), "table1");
  EXPECT_EQ(c.paper_network(), "alexnet");
  EXPECT_DOUBLE_EQ(c.paper_delta(), 0.0);
  EXPECT_DOUBLE_EQ(c.our_delta(), 0.0);
  EXPECT_DOUBLE_EQ(c.cost_uniform(), 1.0);
  const pb::GridCell& wide = grid->cells(3);  // alexnet 2x 1/1
  EXPECT_EQ(wide.width(), 2);
  EXPECT_DOUBLE_EQ(wide.paper_top1(), 48.3);
  EXPECT_EQ(wide.paper_table(), "table2");
  EXPECT_TRUE(wide.has_paper_cost());
  EXPECT_DOUBLE_EQ(wide.paper_cost(), 0.1);
  EXPECT_DOUBLE_EQ(wide.paper_delta(), 48.3 - 57.2);
  EXPECT_GT(wide.fma_ratio(), 3.0);
  EXPECT_LT(wide.cost_uniform(), c.cost_uniform());
  ASSERT_EQ(grid->baselines_size(), 1);
  EXPECT_DOUBLE_EQ(grid->baselines(0).top1(), 57.2);
  EXPECT_THAT(registry_->Render(),
              HasSubstr("wrpn_trial_top1{sweep=\"1\",network=\"alexnet\",width=\"1\",wbits=\"32\","
                        "abits=\"32\"} 53"));
}

TEST_F(CoordinatorTest, PaperTablesAreServed) {
  auto r = c_->GetPaperTables({});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->version().empty());
  EXPECT_EQ(r->bits_axis_size(), 5);
  bool found = false;
  for (const auto& v : r->values()) {
    if (v.table() == "table4" && v.width() == 3 && v.wbits() == 1) {
      found = true;
      EXPECT_DOUBLE_EQ(v.top1(), 72.38);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(r->baselines_size(), 3);  // alexnet, resnet34, inception_bn
}

TEST_F(CoordinatorTest, BadPagingIsRejected) {
  Submit(kCpuSpec);
  pb::ListTrialsRequest req;
  req.set_sweep_id(1);
  req.set_page_token("abc");
  EXPECT_EQ(c_->ListTrials(req).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateRequest(req).code(), absl::StatusCode::kInvalidArgument) << "at the edge too";
  req.set_page_token("");
  req.set_page_size(3);
  auto page1 = c_->ListTrials(req);
  ASSERT_TRUE(page1.ok());
  EXPECT_EQ(page1->trials_size(), 3);
  req.set_page_token(page1->next_page_token());
  auto page2 = c_->ListTrials(req);
  EXPECT_EQ(page2->trials_size(), 1);
  EXPECT_TRUE(page2->next_page_token().empty());
  req.set_page_token("");
  req.set_wbits(4);
  EXPECT_EQ(c_->ListTrials(req)->trials_size(), 2);
  pb::GetSweepRequest missing;
  missing.set_sweep_id(42);
  EXPECT_EQ(c_->GetSweep(missing).status().code(), absl::StatusCode::kNotFound);
}

// A failed write leaves memory as the database has it: nothing half-applied.
// Every kind the trainer can emit (common/trainer_protocol.h) passes the edge's validation, is
// stored on its attempt (also across a restart) and decides the retry: config is final, the
// others re-queue, all but interrupted after the backoff.
TEST_F(CoordinatorTest, EveryFailureKindIsAcceptedStoredAndDecidesTheRetry) {
  opts_.retry_backoff = 10s;
  Open();
  for (FailureKind kind : kAllFailureKinds) {
    SCOPED_TRACE(std::string(FailureKindName(kind)));
    Submit("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}\nmax_attempts: 3\n");
    const std::string w = Register(absl::StrCat("w-", FailureKindName(kind)));
    auto l = Acquire(w);
    ASSERT_EQ(l.size(), 1u);
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = Ref(l[0]);
    req.mutable_failure()->set_kind(std::string(FailureKindName(kind)));
    req.mutable_failure()->set_failure_kind(static_cast<pb::FailureKind>(kind));
    req.mutable_failure()->set_reason("the trainer's reason");
    ASSERT_TRUE(ValidateRequest(req).ok()) << ValidateRequest(req);
    ASSERT_TRUE(c_->CompleteTrial(req).ok());
    for (int restart = 0; restart < 2; ++restart) {
      const pb::GetTrialResponse t = Trial(l[0].trial_id());
      ASSERT_EQ(t.attempts_size(), 1);
      EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_FAILED);
      EXPECT_EQ(t.attempts(0).failure_kind(), static_cast<pb::FailureKind>(kind));
      EXPECT_EQ(t.attempts(0).reason(), absl::StrCat(FailureKindName(kind), ": the trainer's reason"));
      EXPECT_EQ(t.trial().state(), FailureIsRetried(kind) ? pb::TRIAL_QUEUED : pb::TRIAL_FAILED);
      if (FailureIsRetried(kind)) {
        EXPECT_EQ(absl::StrContains(t.trial().pending_reason(), "retry backoff"),
                  FailureBacksOff(kind))
            << t.trial().pending_reason();
      }
      Open();  // the kind comes back from the store
    }
    pb::CancelSweepRequest cancel;
    cancel.set_sweep_id(l[0].sweep_id());
    ASSERT_TRUE(c_->CancelSweep(cancel).ok());
  }
}

// The edge refuses a kind the protocol does not have, and a name that disagrees with the enum;
// a bare name (an older agent) or a bare enum is enough.
TEST_F(CoordinatorTest, UnknownOrContradictoryFailureKindsAreRefusedAtTheEdge) {
  pb::CompleteTrialRequest req;
  req.mutable_lease()->set_lease_id("l-1-0");
  req.mutable_lease()->set_fencing_token(1);
  req.mutable_failure()->set_kind("oom");
  EXPECT_THAT(ValidateRequest(req).message(), HasSubstr("failure.kind: unknown kind 'oom'"));
  req.mutable_failure()->set_kind("rendezvous");
  EXPECT_TRUE(ValidateRequest(req).ok());
  req.mutable_failure()->set_failure_kind(pb::FAILURE_KIND_DATA);
  EXPECT_THAT(ValidateRequest(req).message(), HasSubstr("disagrees with failure_kind"));
  req.mutable_failure()->clear_kind();
  EXPECT_TRUE(ValidateRequest(req).ok());
  req.mutable_failure()->set_failure_kind(static_cast<pb::FailureKind>(42));
  EXPECT_THAT(ValidateRequest(req).message(), HasSubstr("failure.failure_kind: unknown kind 42"));
}

TEST_F(CoordinatorTest, FailedAttemptsAreRetriedAfterABackoffThatDoublesAndSurvivesARestart) {
  opts_.retry_backoff = 10s;
  opts_.retry_backoff_max = 25s;
  Open();
  const int64_t sweep = Submit(
      "name: backoff\naxes: {network: lenet5, width: [1], precision: [\"4/4\"]}\n"
      "recipe: {epochs: 2}\nmax_attempts: 8\n");
  const std::string w = Register("w");
  auto leased_after = [&](std::chrono::seconds wait) -> std::optional<pb::Lease> {
    // Nothing until `wait` has passed, then the trial.
    clock_.Advance(wait - 1s);
    EXPECT_TRUE(Acquire(w).empty()) << "leased before its backoff of " << wait.count() << " s";
    clock_.Advance(1s);
    auto got = Acquire(w);
    if (got.size() != 1) return std::nullopt;
    return got[0];
  };
  auto first = Acquire(w);
  ASSERT_EQ(first.size(), 1u);
  const int64_t trial = first[0].trial_id();
  ASSERT_TRUE(Fail(first[0], "internal", "CUDA error: an illegal memory access").ok());
  auto t = Trial(trial);
  EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED);
  EXPECT_EQ(t.trial().pending_reason(),
            "retry backoff after a failed attempt: leased again in 10 s");
  auto second = leased_after(10s);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempt(), 2);

  // Second failure in a row: 20 s. A restart 19 s in keeps the remaining second.
  ASSERT_TRUE(Fail(*second, "internal", "segfault").ok());
  clock_.Advance(19s);
  Open();
  EXPECT_TRUE(Acquire(w).empty());
  EXPECT_EQ(Trial(trial).trial().pending_reason(),
            "retry backoff after a failed attempt: leased again in 1 s");
  clock_.Advance(1s);
  auto third = Acquire(w);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].attempt(), 3);

  // Third: 40 s, capped at 25 s.
  ASSERT_TRUE(Fail(third[0], "internal", "segfault").ok());
  auto fourth = leased_after(25s);
  ASSERT_TRUE(fourth.has_value());

  // A worker shutting down interrupts the attempt: leased again at once, and the run of failures
  // is broken, so the next failure waits 10 s again.
  ASSERT_TRUE(Fail(*fourth, "interrupted", "worker w shutting down").ok());
  auto fifth = Acquire(w);
  ASSERT_EQ(fifth.size(), 1u);
  ASSERT_TRUE(Fail(fifth[0], "internal", "segfault").ok());
  auto sixth = leased_after(10s);
  ASSERT_TRUE(sixth.has_value());
  EXPECT_EQ(sixth->attempt(), 6);

  // An expired lease is re-queued at once (another worker may take it).
  clock_.Advance(31s);
  const std::string w2 = Register("w2");
  auto seventh = Acquire(w2);
  ASSERT_EQ(seventh.size(), 1u);
  EXPECT_EQ(seventh[0].attempt(), 7);

  // Cancelling the sweep while the trial waits out a backoff cancels it for good.
  ASSERT_TRUE(Fail(seventh[0], "internal", "segfault").ok());
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  ASSERT_TRUE(c_->CancelSweep(cancel).ok());
  clock_.Advance(60s);
  EXPECT_TRUE(Acquire(w2).empty());
  EXPECT_EQ(Trial(trial).trial().state(), pb::TRIAL_CANCELLED);
}

TEST_F(CoordinatorTest, NoRetryBackoffByDefault) {
  Submit(kCpuSpec);
  const std::string w = Register("w");
  auto l = Acquire(w);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_TRUE(Fail(l[0], "internal", "segfault").ok());
  auto again = Acquire(w);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].trial_id(), l[0].trial_id());
  EXPECT_EQ(again[0].attempt(), 2);
}

TEST(CoordinatorWriteFailureTest, FailedWritesChangeNothing) {
  FakeClock clock;
  MemoryStore inner;
  FailingStore store(&inner);
  MetricsRegistry registry;
  auto c = Coordinator::Create(&store, &clock, &registry, {});
  ASSERT_TRUE(c.ok());
  pb::SubmitSweepRequest sub;
  sub.set_spec_text(kCpuSpec);
  store.fail_applies = 1;
  EXPECT_EQ((*c)->SubmitSweep(sub).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*c)->ListSweeps({})->sweeps_size(), 0);
  ASSERT_TRUE((*c)->SubmitSweep(sub).ok());
  pb::RegisterWorkerRequest reg;
  reg.set_name("w");
  auto w = (*c)->RegisterWorker(reg);
  ASSERT_TRUE(w.ok());

  pb::AcquireTrialRequest acq;
  acq.set_worker_id(w->worker_id());
  store.fail_applies = 1;
  EXPECT_EQ((*c)->AcquireTrial(acq).status().code(), absl::StatusCode::kUnavailable);
  pb::GetTrialRequest gt;
  gt.set_trial_id(1);
  EXPECT_EQ((*c)->GetTrial(gt)->trial().state(), pb::TRIAL_QUEUED);
  EXPECT_EQ((*c)->GetTrial(gt)->attempts_size(), 0);
  auto lease = (*c)->AcquireTrial(acq);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->leases_size(), 1);
  EXPECT_EQ(lease->leases(0).trial_id(), 1);
  EXPECT_EQ(lease->leases(0).attempt(), 1);

  pb::CompleteTrialRequest done;
  done.mutable_lease()->set_lease_id(lease->leases(0).lease_id());
  done.mutable_lease()->set_fencing_token(lease->leases(0).fencing_token());
  done.mutable_result()->set_top1(75);
  store.fail_applies = 1;
  EXPECT_EQ((*c)->CompleteTrial(done).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*c)->GetTrial(gt)->trial().state(), pb::TRIAL_RUNNING);
  EXPECT_FALSE((*c)->GetTrial(gt)->trial().has_final_top1());
  ASSERT_TRUE((*c)->CompleteTrial(done).ok());  // the lease survived the failed write
  EXPECT_EQ((*c)->GetTrial(gt)->trial().state(), pb::TRIAL_SUCCEEDED);
  auto snap = inner.Load();
  EXPECT_EQ(snap->trials[0].state, TrialState::kSucceeded);
  EXPECT_EQ(snap->attempts.size(), 1u);
}

// Restart: destroy the coordinator mid-sweep and reopen the same SQLite file.
TEST(CoordinatorRestartTest, SweepSurvivesRestartWithoutDoubleRuns) {
  const std::string path = (std::filesystem::path(testing::TempDir()) /
                            ("restart-" + std::to_string(getpid()) + ".db")).string();
  std::filesystem::remove(path);
  FakeClock clock;
  CoordinatorOptions opts;
  opts.lease_ttl = 30s;
  opts.paper_tables_path = PaperPath();
  std::set<int64_t> running;   // trials a fake worker is running now
  std::map<int64_t, int> runs;  // attempts started per trial
  std::vector<pb::Lease> held;
  std::string worker;
  int64_t sweep = 0;
  auto start = [&](Coordinator* c) {
    pb::AcquireTrialRequest req;
    req.set_worker_id(worker);
    req.set_max_trials(3);
    auto r = c->AcquireTrial(req);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& l : r->leases()) {
      ASSERT_TRUE(running.insert(l.trial_id()).second) << "trial " << l.trial_id() << " twice";
      runs[l.trial_id()]++;
      held.push_back(l);
    }
  };
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok());
    MetricsRegistry reg;
    auto c = Coordinator::Create(store->get(), &clock, &reg, opts);
    ASSERT_TRUE(c.ok());
    pb::SubmitSweepRequest sub;
    sub.set_spec_text(kCpuSpec);
    sweep = (*c)->SubmitSweep(sub)->sweep_id();
    pb::RegisterWorkerRequest reg_req;
    reg_req.set_name("w");
    reg_req.set_max_cpu_trials(3);
    worker = (*c)->RegisterWorker(reg_req)->worker_id();
    start(c->get());
    ASSERT_EQ(held.size(), 3u);
    for (const auto& l : held) {
      pb::ReportMetricsRequest m;
      m.mutable_lease()->set_lease_id(l.lease_id());
      m.mutable_lease()->set_fencing_token(l.fencing_token());
      for (int e = 1; e <= 2; ++e) {
        auto* p = m.add_points();
        p->set_name("top1");
        p->set_step(e);
        p->set_value(30 + e);
      }
      ASSERT_TRUE((*c)->ReportMetrics(m).ok());
    }
    // Finish one trial before the "crash".
    pb::CompleteTrialRequest done;
    done.mutable_lease()->set_lease_id(held[0].lease_id());
    done.mutable_lease()->set_fencing_token(held[0].fencing_token());
    done.mutable_result()->set_top1(88);
    ASSERT_TRUE((*c)->CompleteTrial(done).ok());
    running.erase(held[0].trial_id());
    held.erase(held.begin());
  }  // coordinator and store destroyed

  clock.Advance(25s);  // time passes while it is down
  auto store = SqliteStore::Open(path);
  ASSERT_TRUE(store.ok());
  MetricsRegistry reg;
  auto c = Coordinator::Create(store->get(), &clock, &reg, opts);
  ASSERT_TRUE(c.ok()) << c.status();
  pb::GetSweepRequest gs;
  gs.set_sweep_id(sweep);
  auto s = (*c)->GetSweep(gs);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->sweep().counts().total(), 4);
  EXPECT_EQ(s->sweep().counts().succeeded(), 1);
  EXPECT_EQ(s->sweep().counts().running(), 2);
  EXPECT_EQ(s->sweep().counts().queued(), 1);
  pb::GetTrialMetricsRequest gm;
  gm.set_trial_id(held[0].trial_id());
  EXPECT_EQ((*c)->GetTrialMetrics(gm)->points_size(), 2);
  pb::GetTrialRequest gt;
  gt.set_trial_id(held[0].trial_id());
  auto t = (*c)->GetTrial(gt);
  EXPECT_EQ(t->attempts_size(), 1);
  EXPECT_DOUBLE_EQ(t->trial().best_top1(), 32);
  ASSERT_EQ(t->last_metrics_size(), 1);  // rebuilt from the stored series
  EXPECT_EQ(t->last_metrics(0).step(), 2);
  EXPECT_DOUBLE_EQ(t->last_metrics(0).value(), 32);

  // Leases live at the restart get a full TTL from now: 25 s after the restart they are alive.
  clock.Advance(25s);
  ASSERT_TRUE((*c)->Tick().ok());
  pb::HeartbeatRequest hb;
  hb.set_worker_id(worker);
  for (const auto& l : held) {
    auto* p = hb.add_leases()->mutable_lease();
    p->set_lease_id(l.lease_id());
    p->set_fencing_token(l.fencing_token());
  }
  auto hr = (*c)->Heartbeat(hb);
  ASSERT_TRUE(hr.ok()) << hr.status();
  EXPECT_EQ(hr->commands_size(), 0);
  // The worker still holds 2 leases of its 3 slots: only the queued trial may start now.
  start(c->get());
  EXPECT_EQ(running.size(), 3u);
  while (!held.empty()) {
    pb::CompleteTrialRequest done;
    done.mutable_lease()->set_lease_id(held.back().lease_id());
    done.mutable_lease()->set_fencing_token(held.back().fencing_token());
    done.mutable_result()->set_top1(77);
    ASSERT_TRUE((*c)->CompleteTrial(done).ok());
    running.erase(held.back().trial_id());
    held.pop_back();
    start(c->get());
  }
  s = (*c)->GetSweep(gs);
  EXPECT_EQ(s->sweep().state(), pb::SWEEP_SUCCEEDED);
  for (const auto& [trial, n] : runs) EXPECT_EQ(n, 1) << "trial " << trial;
  EXPECT_EQ(runs.size(), 4u);
}

// Metrics are delivered at least once: a worker whose reply was lost (a deadline, a coordinator
// killed between the commit and the answer) sends the batch again. The copy is not stored twice,
// also when the resend reaches a restarted coordinator.
TEST(CoordinatorRestartTest, AResentMetricsBatchIsStoredOnceAlsoAfterARestart) {
  const std::string path = (std::filesystem::path(testing::TempDir()) /
                            ("resend-" + std::to_string(getpid()) + ".db")).string();
  std::filesystem::remove(path);
  FakeClock clock;
  CoordinatorOptions opts;
  opts.lease_ttl = 30s;
  opts.paper_tables_path = PaperPath();
  pb::Lease lease;
  auto batch = [&](std::vector<int> epochs) {
    pb::ReportMetricsRequest m;
    m.mutable_lease()->set_lease_id(lease.lease_id());
    m.mutable_lease()->set_fencing_token(lease.fencing_token());
    for (int e : epochs) {
      for (const char* name : {"top1", "train_loss"}) {
        auto* p = m.add_points();
        p->set_name(name);
        p->set_step(e);
        p->set_value(10.0 * e);
        p->set_wall_ms(1000000 + 1000 * e);
      }
    }
    return m;
  };
  auto count = [&](Coordinator* c) {
    pb::GetTrialMetricsRequest gm;
    gm.set_trial_id(lease.trial_id());
    auto r = c->GetTrialMetrics(gm);
    EXPECT_TRUE(r.ok()) << r.status();
    std::map<std::pair<std::string, int64_t>, int> n;
    for (const auto& p : r->points()) n[{p.name(), p.step()}]++;
    for (const auto& [key, times] : n) EXPECT_EQ(times, 1) << key.first << " step " << key.second;
    return r->points_size();
  };
  {
    auto store = SqliteStore::Open(path);
    ASSERT_TRUE(store.ok());
    MetricsRegistry reg;
    auto c = Coordinator::Create(store->get(), &clock, &reg, opts);
    ASSERT_TRUE(c.ok());
    pb::SubmitSweepRequest sub;
    sub.set_spec_text(kCpuSpec);
    ASSERT_TRUE((*c)->SubmitSweep(sub).ok());
    pb::RegisterWorkerRequest reg_req;
    reg_req.set_name("w");
    auto worker = (*c)->RegisterWorker(reg_req)->worker_id();
    pb::AcquireTrialRequest acq;
    acq.set_worker_id(worker);
    auto leases = (*c)->AcquireTrial(acq);
    ASSERT_TRUE(leases.ok() && leases->leases_size() == 1);
    lease = leases->leases(0);
    ASSERT_TRUE((*c)->ReportMetrics(batch({0, 1})).ok());
    ASSERT_TRUE((*c)->ReportMetrics(batch({0, 1})).ok());  // the reply was lost: sent again
    EXPECT_EQ(count(c->get()), 4);
    ASSERT_TRUE((*c)->ReportMetrics(batch({0, 1, 2})).ok());  // again, with a newer epoch
    EXPECT_EQ(count(c->get()), 6);
  }  // killed before the worker saw the answer
  auto store = SqliteStore::Open(path);
  ASSERT_TRUE(store.ok());
  MetricsRegistry reg;
  auto c = Coordinator::Create(store->get(), &clock, &reg, opts);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE((*c)->ReportMetrics(batch({1, 2, 3})).ok());
  EXPECT_EQ(count(c->get()), 8) << "epochs 1 and 2 were stored before the restart";
  std::filesystem::remove(path);
}

// Issue 16: a worker restarted under the same name (and address) gets its old registration's
// leases released at registration, on the fake clock without any time passing, not after the TTL.
TEST_F(CoordinatorTest, WorkerRestartedUnderItsNameReleasesItsOldLeasesAtOnce) {
  Submit(kCpuSpec);
  const std::string before = Register("node-a", 0, 2);
  const std::string other = Register("node-b", 0, 1);
  auto old_leases = Acquire(before, 2);
  ASSERT_EQ(old_leases.size(), 2u);
  auto kept = Acquire(other, 1);
  ASSERT_EQ(kept.size(), 1u);
  const std::string after = Register("node-a", 0, 2);  // same name: the process restarted
  ASSERT_NE(after, before);
  for (const auto& l : old_leases) {
    auto t = Trial(l.trial_id());
    EXPECT_EQ(t.trial().state(), pb::TRIAL_QUEUED) << l.trial_id();
    ASSERT_EQ(t.attempts_size(), 1);
    EXPECT_EQ(t.attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
    EXPECT_THAT(t.trial().error(), HasSubstr("restarted"));
  }
  EXPECT_EQ(Trial(kept[0].trial_id()).trial().state(), pb::TRIAL_RUNNING);  // another worker's
  auto again = Acquire(after, 2);
  ASSERT_EQ(again.size(), 2u);
  for (const auto& l : again) EXPECT_EQ(l.attempt(), 2);
  EXPECT_EQ(Complete(old_leases[0], 50).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(registry_->Render(), HasSubstr("wrpn_lease_expirations_total 0"));
  pb::ListWorkersRequest lw;
  auto workers = c_->ListWorkers(lw);
  ASSERT_TRUE(workers.ok());
  for (const auto& w : workers->workers())
    if (w.id() == before) EXPECT_EQ(w.state(), "lost");
  // A different address under the same name is another machine: nothing is released.
  pb::RegisterWorkerRequest twin;
  twin.set_name("node-b");
  twin.set_address("elsewhere.local");
  ASSERT_TRUE(c_->RegisterWorker(twin).ok());
  EXPECT_EQ(Trial(kept[0].trial_id()).trial().state(), pb::TRIAL_RUNNING);
}

// Issue 16: every counter exists at 0 before its first event, with its known label sets.
TEST_F(CoordinatorTest, CountersAreExportedAtZeroFromTheStart) {
  const std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("\nwrpn_lease_expirations_total 0\n"));
  EXPECT_THAT(text, HasSubstr("\nwrpn_metric_points_ingested_total 0\n"));
  for (const char* outcome : {"succeeded", "failed", "expired", "cancelled"})
    EXPECT_THAT(text, HasSubstr(std::string("wrpn_trial_attempts_total{outcome=\"") + outcome + "\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("wrpn_trial_queue_wait_seconds_count 0\n"));
  EXPECT_THAT(text, HasSubstr("wrpn_trial_duration_seconds_count 0\n"));
}

// Issue 16: one seed has no spread: final_top1_std is unset, not 0.
TEST_F(CoordinatorTest, SingleSeedCellHasNoStd) {
  const int64_t sweep = Submit(R"(
axes: {network: lenet5, width: 1, precision: ["32/32"]}
recipe: {epochs: 1}
)");
  std::string w = Register("w");
  auto leases = Acquire(w, 1);
  ASSERT_EQ(leases.size(), 1u);
  ASSERT_TRUE(Complete(leases[0], 61.5).ok());
  pb::GetGridRequest req;
  req.set_sweep_id(sweep);
  auto grid = c_->GetGrid(req);
  ASSERT_TRUE(grid.ok()) << grid.status();
  ASSERT_EQ(grid->cells_size(), 1);
  EXPECT_DOUBLE_EQ(grid->cells(0).final_top1(), 61.5);
  EXPECT_FALSE(grid->cells(0).has_final_top1_std()) << grid->cells(0).final_top1_std();
}

}  // namespace
}  // namespace wrpn::server
