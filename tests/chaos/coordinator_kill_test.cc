// The coordinator SIGKILLed at random moments of a running sweep, again and again, while two
// workers stream metrics, report checkpoints and results and acquire trials: after every kill the
// database passes `PRAGMA integrity_check` and holds no RUNNING attempt the restarted coordinator
// would not hold a live lease for, and in the end every trial ended exactly once and the grid
// equals the grid of an undisturbed run of the same sweep.
//
// WRPN_CHAOS_KILLS (default 20) sets the number of kills; bench/chaos_soak.sh runs it long.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

using namespace std::chrono_literals;
using ::testing::IsEmpty;

const std::vector<std::string> kPrecisions = {"32/32", "8/8", "4/4", "2/4",
                                              "2/2",   "1/4", "1/2", "1/1"};

TEST_F(ChaosTest, CoordinatorSigkilledAtRandomPointsLosesNothing) {
  const char* kills_env = std::getenv("WRPN_CHAOS_KILLS");
  const int kills_wanted = kills_env ? std::max(1, std::atoi(kills_env)) : 20;
  // Each sweep of 24 trials x `epochs`; the disturbed one (0.3 s epochs, 4 at a time) must
  // outlast the kill loop, whose restarts take 0.5 to 4 s on a loaded 2-core machine. Once the loop
  // is done, fast workers take over (the slow ones drain) so the test ends soon after.
  const int epochs = std::max(100, 5 * kills_wanted);
  const auto t_start = std::chrono::steady_clock::now();
  StartCoordinator(Flags(3));

  // The undisturbed run: fast epochs, nothing killed.
  auto baseline = Submit(SweepSpec("undisturbed", {1, 2, 3}, kPrecisions, epochs, 10));
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  for (const char* n : {"fast-a", "fast-b"})
    ASSERT_NE(StartWorker(n, {{"WRPN_FAKE_EPOCH_MS", "2"}}, {"--max-cpu-trials", "2"}), nullptr);
  ASSERT_TRUE(WaitForSweep(*baseline, 60s));
  auto base_grid = GetGrid(*baseline);
  ASSERT_TRUE(base_grid.ok()) << base_grid.status();
  for (const char* n : {"fast-a", "fast-b"}) {
    Stopped(n);
    workers_[n]->Terminate();
  }
  ASSERT_TRUE(WaitFor([&] {
    return workers_["fast-a"]->Exited().has_value() && workers_["fast-b"]->Exited().has_value();
  }, 20s));
  const double baseline_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  // The disturbed run: the same sweep, slower epochs, the coordinator killed at random.
  auto sweep = Submit(SweepSpec("disturbed", {1, 2, 3}, kPrecisions, epochs, 10));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  for (const char* n : {"slow-a", "slow-b"})
    ASSERT_NE(StartWorker(n, {{"WRPN_FAKE_EPOCH_MS", "300"}}, {"--max-cpu-trials", "2"}), nullptr);
  ASSERT_TRUE(WaitFor([&] {
    auto r = ListTrials(*sweep, pb::TRIAL_RUNNING);
    return r.ok() && r->size() >= 4;
  }, 20s)) << "four trials running";

  const unsigned seed = static_cast<unsigned>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> up_ms(30, 600), down_ms(0, 300);
  int kills = 0, kills_with_running = 0;
  double longest_check_ms = 0, longest_restart_ms = 0, total_restart_ms = 0;
  const auto loop_start = std::chrono::steady_clock::now();
  while (kills < kills_wanted) {
    // Up for a random while: workers are heartbeating, streaming metrics (every 0.2 s per
    // trial), reporting checkpoints (every 0.3 s) and results, and acquiring (every 0.1 s).
    const auto up = std::chrono::milliseconds(up_ms(rng));
    WaitFor([] { return false; }, up);
    if (SweepFinished(*sweep)) break;
    auto running = ListTrials(*sweep, pb::TRIAL_RUNNING);
    KillCoordinator();
    ++kills;
    if (running.ok() && !running->empty()) ++kills_with_running;
    const auto c0 = std::chrono::steady_clock::now();
    const DbCheck db = CheckDatabase(db_path_);
    longest_check_ms = std::max(
        longest_check_ms,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count());
    ASSERT_EQ(db.integrity, "ok") << "after kill " << kills << " (seed " << seed << ")";
    ASSERT_THAT(db.violations, IsEmpty()) << "after kill " << kills << " (seed " << seed << ")";
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms(rng)));
    const auto r0 = std::chrono::steady_clock::now();
    StartCoordinator();
    if (HasFatalFailure()) return;
    const double restart_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
    longest_restart_ms = std::max(longest_restart_ms, restart_ms);
    total_restart_ms += restart_ms;
  }
  const double loop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_start).count();
  EXPECT_GE(kills, kills_wanted) << "the sweep finished before the kill loop did (seed " << seed
                                 << ")";
  for (const char* n : {"slow-a", "slow-b"}) {
    Stopped(n);
    workers_[n]->Terminate();  // drain: interrupted at a checkpoint, re-queued
  }
  for (const char* n : {"finish-a", "finish-b"})
    ASSERT_NE(StartWorker(n, {{"WRPN_FAKE_EPOCH_MS", "2"}}, {"--max-cpu-trials", "2"}), nullptr);
  ASSERT_TRUE(WaitForSweep(*sweep, 120s)) << "seed " << seed;
  auto s = GetSweep(*sweep);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state(), pb::SWEEP_SUCCEEDED);
  ExpectEachTrialEndedOnce(*sweep);
  auto grid = GetGrid(*sweep);
  ASSERT_TRUE(grid.ok()) << grid.status();
  ExpectSameGrid(*grid, *base_grid);

  int attempts = 0, expired = 0;
  auto trials = ListTrials(*sweep);
  ASSERT_TRUE(trials.ok());
  for (const auto& t : *trials) {
    auto full = GetTrial(t.id());
    ASSERT_TRUE(full.ok());
    for (const auto& a : full->attempts()) {
      ++attempts;
      expired += a.outcome() == pb::ATTEMPT_EXPIRED;
    }
  }
  const DbCheck db = CheckDatabase(db_path_);
  std::cout << "[chaos] coordinator kill loop: seed " << seed << ", " << kills << " SIGKILLs ("
            << kills_with_running << " with trials running) in " << loop_s << " s; "
            << trials->size() << " trials, " << attempts << " attempts (" << expired
            << " expired leases re-run); " << db.metric_rows << " metric rows, "
            << db.duplicate_points << " duplicate; longest db check " << longest_check_ms
            << " ms; restart to first answer " << total_restart_ms / std::max(1, kills)
            << " ms on average, " << longest_restart_ms << " ms at most; undisturbed run " << baseline_s << " s; total "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()
            << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
