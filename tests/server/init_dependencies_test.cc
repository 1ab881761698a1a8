// recipe.init_from: fp32: the pure dependency rules (server/init_dependencies.h) and the
// coordinator holding, releasing and failing dependents, also across a restart on SQLite.
#include "server/init_dependencies.h"

#include <unistd.h>

#include <filesystem>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/coordinator.h"
#include "server/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/server/coordinator_calls.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kInitSpec = R"(
name: lsq-from-fp32
axes: {network: lenet5, width: [1, 2], precision: ["4/4", "2/2"], scheme: [wrpn, lsq], seed: [0]}
recipe: {epochs: 1, init_from: fp32}
max_attempts: 1
)";

SweepSpec Spec(const std::string& text) {
  auto s = ParseSweepSpec(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(InitDependencies, MissingFp32PointsOnePerNetworkWidthSeed) {
  const SweepSpec spec = Spec(kInitSpec);
  const auto points = ExpandSweep(spec);
  ASSERT_EQ(points.size(), 8u);
  const auto extra = MissingFp32Points(spec, points);
  ASSERT_EQ(extra.size(), 2u);
  for (const TrialPoint& p : extra) {
    EXPECT_EQ(p.wbits, 32);
    EXPECT_EQ(p.abits, 32);
    EXPECT_EQ(p.scheme, "wrpn");
    EXPECT_EQ(p.network, "lenet5");
  }
  EXPECT_EQ(extra[0].width, 1);
  EXPECT_EQ(extra[1].width, 2);
}

TEST(InitDependencies, NoExtraPointsWithoutInitFromOrWhenTheGridHasThem) {
  EXPECT_TRUE(MissingFp32Points(Spec("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}"),
                                ExpandSweep(Spec("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}")))
                  .empty());
  const SweepSpec with = Spec(
      "axes: {network: lenet5, width: 1, precision: [\"32/32\", \"4/4\"], scheme: lsq}\n"
      "recipe: {init_from: fp32}");
  EXPECT_TRUE(MissingFp32Points(with, ExpandSweep(with)).empty());  // lsq's 32/32 serves
}

TrialRecord Rec(int64_t id, int wbits, int abits, const std::string& scheme, bool init,
                double width = 1, int64_t seed = 0) {
  TrialRecord t;
  t.id = id;
  t.network = "lenet5";
  t.width = width;
  t.wbits = wbits;
  t.abits = abits;
  t.seed = seed;
  t.scheme = scheme;
  TrialConfig c;
  c.wbits = wbits;
  c.abits = abits;
  c.scheme = scheme;
  if (init) c.init_from = "fp32";
  t.config_json = TrialConfigToJson(c).dump();
  return t;
}

TEST(InitDependencies, QuantizedTrialsDependOnTheFp32TrialOfTheirCellPreferringTheirScheme) {
  const TrialRecord fp32_wrpn = Rec(1, 32, 32, "wrpn", true);
  const TrialRecord fp32_lsq = Rec(2, 32, 32, "lsq", true);
  const TrialRecord lsq = Rec(3, 4, 4, "lsq", true);
  const TrialRecord pact = Rec(4, 2, 2, "pact", true);
  const TrialRecord plain = Rec(5, 4, 4, "wrpn", false);
  const TrialRecord other_width = Rec(6, 4, 4, "wrpn", true, 2);
  const TrialRecord other_seed = Rec(7, 4, 4, "wrpn", true, 1, 3);
  EXPECT_TRUE(WantsFp32Init(lsq));
  EXPECT_FALSE(WantsFp32Init(fp32_wrpn));  // the source itself
  EXPECT_FALSE(WantsFp32Init(plain));
  InitDependencies deps;
  deps.AddSweep({&lsq, &fp32_wrpn, &pact, &plain, &fp32_lsq, &other_width, &other_seed});
  EXPECT_EQ(deps.SourceOf(3), 2);  // lsq's own 32/32
  EXPECT_EQ(deps.SourceOf(4), 1);  // no pact 32/32: wrpn's
  EXPECT_EQ(deps.SourceOf(5), 0);
  EXPECT_EQ(deps.SourceOf(6), 0);  // no 32/32 at width 2 (a submitted sweep always has one)
  EXPECT_EQ(deps.SourceOf(7), 0);
  EXPECT_EQ(deps.DependentsOf(1), std::vector<int64_t>{4});
  EXPECT_TRUE(deps.HasDependents(2));
  EXPECT_FALSE(deps.HasDependents(3));
  EXPECT_TRUE(deps.DependentsOf(3).empty());
  deps.Park(4);
  EXPECT_TRUE(deps.Unpark(4));
  EXPECT_FALSE(deps.Unpark(4)) << "parked once, unparked once";
  EXPECT_FALSE(deps.Unpark(3));
}

TEST(InitDependencies, DecisionBySourceState) {
  TrialRecord s = Rec(9, 32, 32, "wrpn", false);
  s.state = TrialState::kQueued;
  EXPECT_EQ(DecideInit(s).gate, InitGate::kWait);
  EXPECT_EQ(DecideInit(s).reason, "waiting for trial 9: fp32 initialisation");
  s.state = TrialState::kRunning;
  EXPECT_EQ(DecideInit(s).gate, InitGate::kWait);
  s.state = TrialState::kSucceeded;
  EXPECT_EQ(DecideInit(s).gate, InitGate::kFail);  // no checkpoint to start from
  EXPECT_THAT(DecideInit(s).reason, HasSubstr("without reporting a checkpoint"));
  s.checkpoint_path = "/ck/trial-9/attempt-1/last.pt";
  EXPECT_EQ(DecideInit(s).gate, InitGate::kReady);
  s.state = TrialState::kFailed;
  s.error = "data: no such folder";
  EXPECT_EQ(DecideInit(s).gate, InitGate::kFail);
  EXPECT_EQ(DecideInit(s).reason, "fp32 initialisation: trial 9 failed: data: no such folder");
  s.state = TrialState::kCancelled;
  EXPECT_EQ(DecideInit(s).reason, "fp32 initialisation: trial 9 was cancelled");
}

// ---- Through the coordinator, on SQLite ----

class InitFromCoordinatorTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(testing::TempDir()) /
             ("init-from-" + std::to_string(getpid()) + "-" +
              testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
                .string();
    std::filesystem::remove(path_);
    Open();
  }
  void TearDown() override {
    c_.reset();
    store_.reset();
    std::filesystem::remove(path_);
  }
  // Opens (or, called again, restarts) the coordinator on the same database file.
  void Open() {
    c_.reset();
    store_.reset();
    auto s = SqliteStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    registry_ = std::make_unique<MetricsRegistry>();
    CoordinatorOptions opts;
    opts.lease_ttl = 30s;
    auto c = Coordinator::Create(store_.get(), &clock_, registry_.get(), opts);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = *std::move(c);
  }
  std::string Register(const std::string& name) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_address(name + ".local");
    req.set_max_cpu_trials(100);
    auto r = c_->RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->worker_id();
  }
  std::vector<pb::Lease> Acquire(const std::string& worker, int n) {
    return AcquireLeases(*c_, worker, n);
  }
  static pb::LeaseRef Ref(const pb::Lease& l) { return RefOf(l); }
  void Succeed(const pb::Lease& l, const std::string& checkpoint) {
    pb::ReportCheckpointRequest ck;
    *ck.mutable_lease() = Ref(l);
    ck.set_path(checkpoint);
    ck.set_epoch(1);
    ASSERT_TRUE(c_->ReportCheckpoint(ck).ok());
    pb::CompleteTrialRequest req;
    *req.mutable_lease() = Ref(l);
    req.mutable_result()->set_top1(90);
    ASSERT_TRUE(c_->CompleteTrial(req).ok());
  }
  std::vector<pb::Trial> Trials(int64_t sweep) {
    pb::ListTrialsRequest req;
    req.set_sweep_id(sweep);
    auto r = c_->ListTrials(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return {r->trials().begin(), r->trials().end()};
  }
  int64_t Submit(const std::string& text, int64_t* count = nullptr, bool dry_run = false) {
    pb::SubmitSweepRequest req;
    req.set_spec_text(text);
    req.set_dry_run(dry_run);
    auto r = c_->SubmitSweep(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (count) *count = r->trial_count();
    return r->sweep_id();
  }

  std::string path_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(InitFromCoordinatorTest, DependentsWaitSurviveARestartAndStartFromTheFp32Checkpoint) {
  int64_t count = 0;
  Submit(kInitSpec, &count, /*dry_run=*/true);
  EXPECT_EQ(count, 8 + 2) << "a dry run counts the FP32 trials it would add";
  const int64_t sweep = Submit(kInitSpec, &count);
  EXPECT_EQ(count, 8 + 2);  // the two FP32 trials the grid lacked were added
  const std::string w = Register("w");
  // Only the FP32 trials can start, however much the worker asks for.
  auto leases = Acquire(w, 20);
  ASSERT_EQ(leases.size(), 2u);
  std::map<double, int64_t> fp32_by_width;
  for (const auto& t : Trials(sweep)) {
    if (t.wbits() == 32) {
      fp32_by_width[t.width()] = t.id();
      continue;
    }
    EXPECT_EQ(t.state(), pb::TRIAL_QUEUED);
  }
  ASSERT_EQ(fp32_by_width.size(), 2u);
  for (const auto& l : leases) EXPECT_TRUE(l.keep_checkpoint()) << "its dependents need it";

  Open();  // a coordinator restart: the dependencies come back from the stored trials
  EXPECT_TRUE(Acquire(w, 20).empty());
  for (const auto& t : Trials(sweep)) {
    if (t.wbits() == 32) continue;
    EXPECT_EQ(t.pending_reason(), "waiting for trial " + std::to_string(fp32_by_width[t.width()]) +
                                      ": fp32 initialisation")
        << t.id();
  }

  // The 1x FP32 trial succeeds: its four dependents start, with its checkpoint; the 2x's wait.
  const pb::Lease* one = nullptr;
  for (const auto& l : leases)
    if (l.trial_id() == fp32_by_width[1]) one = &l;
  ASSERT_NE(one, nullptr);
  Succeed(*one, "/ck/trial-1/attempt-1/last.pt");
  auto dependents = Acquire(w, 20);
  ASSERT_EQ(dependents.size(), 4u);
  for (const auto& d : dependents) {
    EXPECT_EQ(d.init_checkpoint(), "/ck/trial-1/attempt-1/last.pt");
    EXPECT_FALSE(d.keep_checkpoint());
    EXPECT_THAT(d.trial_config_json(), HasSubstr("\"init_from\":\"fp32\""));
  }
}

TEST_F(InitFromCoordinatorTest, AFailedFp32TrialFailsItsDependentsClearly) {
  const int64_t sweep = Submit(kInitSpec);
  const std::string w = Register("w");
  auto leases = Acquire(w, 20);
  ASSERT_EQ(leases.size(), 2u);
  Open();  // also across a restart
  pb::CompleteTrialRequest req;
  *req.mutable_lease() = Ref(leases[0]);
  req.mutable_failure()->set_kind("data");
  req.mutable_failure()->set_reason("fashion-mnist: no such folder");
  ASSERT_TRUE(c_->CompleteTrial(req).ok());
  int failed = 0;
  for (const auto& t : Trials(sweep)) {
    if (t.id() == leases[0].trial_id()) {
      EXPECT_EQ(t.state(), pb::TRIAL_FAILED);
      continue;
    }
    if (t.wbits() == 32) continue;
    const bool dependent = t.pending_reason().empty();
    if (!dependent) continue;  // the other width's, still waiting
    EXPECT_EQ(t.state(), pb::TRIAL_FAILED) << t.id();
    EXPECT_THAT(t.error(), HasSubstr("fp32 initialisation: trial " + std::to_string(leases[0].trial_id()) +
                                     " failed: data: fashion-mnist: no such folder"));
    ++failed;
  }
  EXPECT_EQ(failed, 4);
  EXPECT_EQ(Acquire(w, 20).size(), 0u);  // the other width's dependents still wait
}

// Cancelling the sweep while an FP32 trial runs cancels its dependents (they did not fail), and
// a retry of the sweep holds them again behind the re-queued FP32 trial.
TEST_F(InitFromCoordinatorTest, ACancelledSweepCancelsTheDependentsAndARetryHoldsThemAgain) {
  const int64_t sweep = Submit(R"(
axes: {network: lenet5, width: 1, precision: ["32/32", "2/2"], scheme: lsq}
recipe: {epochs: 1, init_from: fp32}
max_attempts: 1
)");
  const std::string w = Register("w");
  auto leases = Acquire(w, 5);
  ASSERT_EQ(leases.size(), 1u);  // the 32/32 trial, listed first
  pb::CancelSweepRequest cancel;
  cancel.set_sweep_id(sweep);
  ASSERT_TRUE(c_->CancelSweep(cancel).ok());
  for (const auto& t : Trials(sweep)) {
    EXPECT_EQ(t.state(), pb::TRIAL_CANCELLED) << t.id();
    EXPECT_EQ(t.error(), "") << t.id();
  }
  pb::RetrySweepRequest retry;
  retry.set_sweep_id(sweep);
  ASSERT_TRUE(c_->RetrySweep(retry).ok());
  auto again = Acquire(w, 5);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].trial_id(), leases[0].trial_id());
  for (const auto& t : Trials(sweep)) {
    if (t.wbits() == 32) continue;
    EXPECT_EQ(t.pending_reason(),
              "waiting for trial " + std::to_string(leases[0].trial_id()) + ": fp32 initialisation");
  }
  Succeed(again[0], "/ck/trial-1/attempt-2/last.pt");
  auto dependent = Acquire(w, 5);
  ASSERT_EQ(dependent.size(), 1u);
  EXPECT_EQ(dependent[0].init_checkpoint(), "/ck/trial-1/attempt-2/last.pt");
}

}  // namespace
}  // namespace wrpn::server
