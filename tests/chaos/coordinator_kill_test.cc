// The coordinator SIGKILLed again and again during a running sweep, while two workers stream
// metrics, report checkpoints and results and acquire trials: half of the kills at random
// moments, half at named points inside and right after the store transactions of metric ingest,
// checkpoint reports, completions and lease grants (WRPN_CRASH_AT): after every kill the
// database passes `PRAGMA integrity_check` and holds no RUNNING attempt the restarted coordinator
// would not hold a live lease for, and in the end every trial ended exactly once and the grid
// equals the grid of an undisturbed run of the same sweep.
//
// WRPN_CHAOS_KILLS (default 20) sets the number of kills; bench/chaos_soak.sh runs it long.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
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
  std::uniform_int_distribution<int> up_ms(30, 600), down_ms(0, 300), nth(1, 20);
  // Every other kill lands at a named point (WRPN_CRASH_AT, common/crash_point.h): inside the
  // store transaction of a metric batch, checkpoint report, completion or lease grant (rows
  // written, not committed), or right after its COMMIT (committed, the caller never answered).
  // Completions and grants are made to happen by SIGKILLing a fake trainer: its worker reports
  // the failure, the trial is re-queued and leased again at once.
  struct Point {
    const char* name;
    bool needs_trainer_kill;
  };
  const std::vector<Point> points = {
      {"metrics.uncommitted", false}, {"lease_grant.uncommitted", true},
      {"metrics.committed", false},   {"lease_grant.committed", true},
      {"complete.uncommitted", true}, {"checkpoint.uncommitted", false},
      {"complete.committed", true},   {"checkpoint.committed", false}};
  std::map<std::string, int> at_point;
  int kills = 0, kills_with_running = 0, trainers_killed = 0;
  double longest_check_ms = 0, longest_restart_ms = 0, total_restart_ms = 0;
  const auto loop_start = std::chrono::steady_clock::now();
  while (kills < kills_wanted) {
    auto running = ListTrials(*sweep, pb::TRIAL_RUNNING);
    if (!crash_at_.empty()) {
      // Armed: wait for the coordinator to reach its point.
      const std::string point = crash_at_.substr(0, crash_at_.find(':'));
      const bool trigger = std::any_of(points.begin(), points.end(), [&](const Point& p) {
        return p.name == point && p.needs_trainer_kill;
      });
      if (trigger && CoordinatorAlive()) {
        std::vector<pid_t> live;
        for (const auto& [pid, what] : Trainers()) live.push_back(pid);
        ASSERT_FALSE(live.empty()) << "no fake trainer to kill (seed " << seed << ")";
        ::kill(live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)], SIGKILL);
        ++trainers_killed;
      }
      const auto exit = WaitCoordinatorExit(30s);
      ASSERT_TRUE(exit.has_value())
          << "the coordinator never reached " << crash_at_ << " (seed " << seed << ")";
      EXPECT_EQ(exit->signal, SIGKILL) << exit->Describe();
      EXPECT_THAT(coordinator_->StderrTail(),
                  ::testing::HasSubstr("crash point '" + point + "' reached"));
      ++at_point[point];
    } else {
      // Up for a random while: workers are heartbeating, streaming metrics (every 0.2 s per
      // trial), reporting checkpoints (every 0.3 s) and results, and acquiring (every 0.1 s).
      WaitFor([] { return false; }, std::chrono::milliseconds(up_ms(rng)));
      if (SweepFinished(*sweep)) break;
      KillCoordinator();
    }
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
    crash_at_.clear();
    if (kills % 2 == 1 && kills < kills_wanted) {
      const Point& p = points[(kills / 2) % points.size()];
      const int n = p.needs_trainer_kill ? 1 : nth(rng);  // metrics/checkpoints: a random one
      crash_at_ = std::string(p.name) + ":" + std::to_string(n);
    }
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

  for (const Point& p : points) {
    EXPECT_GE(at_point[p.name], kills_wanted >= 2 * static_cast<int>(points.size()) ? 1 : 0)
        << p.name << " (seed " << seed << ")";
  }
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
  // A grant killed after its COMMIT reached no worker: that attempt can only have expired.
  EXPECT_GE(expired, at_point["lease_grant.committed"]) << "seed " << seed;
  const DbCheck db = CheckDatabase(db_path_);
  std::string named;
  for (const auto& [point, n] : at_point) named += " " + point + " x" + std::to_string(n);
  std::cout << "[chaos] coordinator kill loop: seed " << seed << ", " << kills << " SIGKILLs ("
            << kills_with_running << " with trials running; at named points:" << named << "; "
            << trainers_killed << " trainers killed to make completions and grants happen) in "
            << loop_s << " s; "
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
