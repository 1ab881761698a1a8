// Worker and trainer faults: a worker SIGKILLed, a worker hung (SIGSTOP: no heartbeats, lease
// still held), a trainer SIGKILLed, a trainer hung (no output for the stall timeout). In each case
// the trial completes elsewhere or again, exactly once, and nothing is counted twice.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

class WorkerFaultsTest : public ChaosTest {
 protected:
  // One trial of `epochs` epochs; returns (sweep, trial) once it runs with a checkpoint at
  // epoch >= `min_epoch`.
  std::pair<int64_t, int64_t> SubmitOneAndWaitForProgress(int epochs, int min_epoch) {
    auto sweep = Submit(SweepSpec("one", {1}, {"4/4"}, epochs));
    EXPECT_TRUE(sweep.ok()) << sweep.status();
    if (!sweep.ok()) return {0, 0};
    int64_t trial = 0;
    EXPECT_TRUE(WaitFor([&] {
      auto r = ListTrials(*sweep, pb::TRIAL_RUNNING);
      if (!r.ok() || r->empty() || (*r)[0].checkpoint_epoch() < min_epoch) return false;
      trial = (*r)[0].id();
      return true;
    }, 30s)) << "trial never made progress";
    return {*sweep, trial};
  }
  // Pids of the live fake trainers of (trial, attempt).
  std::vector<pid_t> TrainersOf(int64_t trial, int attempt) {
    std::vector<pid_t> out;
    for (const auto& [pid, what] : Trainers()) {
      std::istringstream in(what);
      int64_t t = 0;
      int a = 0;
      in >> t >> a;
      if (t == trial && a == attempt) out.push_back(pid);
    }
    return out;
  }
  // The epoch the attempt's trainer started at (from the agent's log), -1 when unknown.
  int StartEpoch(const std::string& worker, int64_t trial, int attempt) {
    const std::string log = AgentLog(worker, trial, attempt);
    const auto at = log.find("trainer started at epoch ");
    return at == std::string::npos ? -1 : std::atoi(log.c_str() + at + 25);
  }
  std::string AgentLog(const std::string& worker, int64_t trial, int attempt) {
    return ReadFile((fs::path(dir_) / worker / "attempts" /
                     ("t" + std::to_string(trial) + "-a" + std::to_string(attempt) + "-n0") /
                     "agent.log")
                        .string());
  }
};

TEST_F(WorkerFaultsTest, KilledWorkerLosesItsLeaseAndTheTrialCompletesElsewhere) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(2));
  agent::Process* first = StartWorker("first", {{"WRPN_FAKE_EPOCH_MS", "100"}});
  ASSERT_NE(first, nullptr);
  auto [sweep, trial] = SubmitOneAndWaitForProgress(30, 3);
  ASSERT_GT(trial, 0);
  Stopped("first");
  ASSERT_EQ(::kill(first->pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return first->Exited().has_value(); }, 10s));
  // Its trainer gets SIGTERM from the kernel (parent-death signal), checkpoints and exits.
  EXPECT_TRUE(WaitFor([&] { return TrainersOf(trial, 1).empty(); }, 10s));
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_NE(StartWorker("second", {{"WRPN_FAKE_EPOCH_MS", "20"}}), nullptr);
  ASSERT_TRUE(WaitForSweep(sweep, 60s));
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_GE(t->attempts_size(), 2);  // more only if the loaded machine let a lease lapse
  EXPECT_EQ(t->attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
  EXPECT_EQ(t->attempts(t->attempts_size() - 1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_FALSE(t->attempts(1).resume_checkpoint().empty());
  const int resumed = StartEpoch("second", trial, t->attempts_size());
  EXPECT_GE(resumed, 3) << "resumed from the first worker's checkpoint";
  ExpectEachTrialEndedOnce(sweep);
  std::cout << "[chaos] worker SIGKILL: trial done " << Seconds(killed)
            << " s after the kill (lease TTL 2 s), resumed at epoch " << resumed << "; test " << Seconds(t0) << " s\n";
}

TEST_F(WorkerFaultsTest, HungWorkerLosesItsLeaseAndStopsItsStaleTrainerWhenItWakes) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(2));
  agent::Process* hung = StartWorker("hung", {{"WRPN_FAKE_EPOCH_MS", "300"}});
  ASSERT_NE(hung, nullptr);
  auto [sweep, trial] = SubmitOneAndWaitForProgress(30, 2);
  ASSERT_GT(trial, 0);
  const std::vector<pid_t> stale = TrainersOf(trial, 1);
  ASSERT_EQ(stale.size(), 1u);
  Stopped("hung");
  ASSERT_EQ(::kill(hung->pid(), SIGSTOP), 0);  // no heartbeats, the lease still "held"
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_NE(StartWorker("healthy", {{"WRPN_FAKE_EPOCH_MS", "20"}}), nullptr);
  ASSERT_TRUE(WaitForSweep(sweep, 60s));
  const double moved_s = Seconds(stopped);
  const int64_t rows_before = CountMetricRows(db_path_, trial, 1);
  EXPECT_TRUE(Alive(stale[0])) << "the hung worker's trainer is still running (stale)";
  // The hung worker wakes up: its heartbeat or its next report learns the lease is gone
  // (FORGET_LEASE / FAILED_PRECONDITION) and it stops the stale trainer.
  ASSERT_EQ(::kill(hung->pid(), SIGCONT), 0);
  const auto woke = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return !Alive(stale[0]); }, 20s)) << "stale trainer still running";
  const double stop_s = Seconds(woke);
  EXPECT_TRUE(WaitFor([&] {
    return AgentLog("hung", trial, 1).find("lease dropped") != std::string::npos;
  }, 10s)) << AgentLog("hung", trial, 1);
  EXPECT_EQ(CountMetricRows(db_path_, trial, 1), rows_before) << "late reports were accepted";
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok());
  ASSERT_GE(t->attempts_size(), 2);  // more only if the loaded machine let a lease lapse
  EXPECT_EQ(t->attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
  EXPECT_EQ(t->attempts(t->attempts_size() - 1).outcome(), pb::ATTEMPT_SUCCEEDED);
  ExpectEachTrialEndedOnce(sweep);
  EXPECT_FALSE(hung->Exited().has_value()) << "the woken worker keeps running";
  std::cout << "[chaos] worker SIGSTOP: trial moved and done " << moved_s
            << " s after the stop; stale trainer stopped " << stop_s
            << " s after SIGCONT; test " << Seconds(t0) << " s\n";
}

TEST_F(WorkerFaultsTest, KilledTrainerFailsTheAttemptWhichIsRetriedFromItsCheckpoint) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(2));
  ASSERT_NE(StartWorker("solo", {{"WRPN_FAKE_EPOCH_MS", "60"}}), nullptr);
  auto [sweep, trial] = SubmitOneAndWaitForProgress(30, 3);
  ASSERT_GT(trial, 0);
  auto pids = TrainersOf(trial, 1);
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitForSweep(sweep, 60s));
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok());
  ASSERT_GE(t->attempts_size(), 2);  // more only if the loaded machine let a lease lapse
  EXPECT_EQ(t->attempts(0).outcome(), pb::ATTEMPT_FAILED);
  EXPECT_THAT(t->attempts(0).reason(), HasSubstr("killed by signal 9 (SIGKILL)"));
  EXPECT_EQ(t->attempts(t->attempts_size() - 1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_GE(StartEpoch("solo", trial, t->attempts_size()), 3) << "the retry resumed from the checkpoint";
  ExpectEachTrialEndedOnce(sweep);
  std::cout << "[chaos] trainer SIGKILL: retried and done " << Seconds(killed)
            << " s after the kill; test " << Seconds(t0) << " s\n";
}

TEST_F(WorkerFaultsTest, HungTrainerIsKilledAfterTheStallTimeoutAndTheTrialRetried) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(2));
  // Attempt 1 hangs at epoch 4: no output, SIGTERM ignored. --stall-timeout 1 s, --grace 1 s.
  ASSERT_NE(StartWorker("solo",
                        {{"WRPN_FAKE_EPOCH_MS", "50"}, {"WRPN_FAKE_HANG_EPOCH", "4"},
                         {"WRPN_FAKE_FAULT_ATTEMPTS", "1"}},
                        {"--stall-timeout", "1", "--grace", "1"}),
            nullptr);
  auto [sweep, trial] = SubmitOneAndWaitForProgress(20, 4);
  ASSERT_GT(trial, 0);
  auto pids = TrainersOf(trial, 1);
  ASSERT_EQ(pids.size(), 1u);
  const auto hung = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !Alive(pids[0]); }, 10s)) << "hung trainer never killed";
  const double killed_s = Seconds(hung);
  ASSERT_TRUE(WaitForSweep(sweep, 60s));
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok());
  ASSERT_GE(t->attempts_size(), 2);  // more only if the loaded machine let a lease lapse
  EXPECT_EQ(t->attempts(0).outcome(), pb::ATTEMPT_FAILED);
  EXPECT_THAT(t->attempts(0).reason(), HasSubstr("stall timeout"));
  EXPECT_THAT(t->attempts(0).reason(), HasSubstr("SIGKILL")) << "it ignored SIGTERM";
  EXPECT_EQ(t->attempts(t->attempts_size() - 1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_GE(StartEpoch("solo", trial, t->attempts_size()), 4) << "the retry resumed from the last checkpoint";
  ExpectEachTrialEndedOnce(sweep);
  std::cout << "[chaos] trainer hung: killed " << killed_s
            << " s after its last checkpoint (stall timeout 1 s + grace 1 s); reason: "
            << t->attempts(0).reason() << "; test " << Seconds(t0) << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
