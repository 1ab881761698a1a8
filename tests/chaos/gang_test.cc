// A multi-node (gang) trial where one rank dies: two workers with two device slots each run a
// 2-node x 2-rank trial of the fake trainer; one rank on node 1 is SIGKILLed. Every rank of the
// attempt stops (the node's other rank by its agent, node 0's ranks through FORGET_LEASE once
// node 1 reported the failure), and the next attempt is leased to both workers together, under
// one new fencing token, and completes.
#include <signal.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST_F(ChaosTest, GangRankDeathStopsEveryRankAndReschedulesTheGangTogether) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(2));
  json spec = SweepSpec("gang", {1}, {"32/32"}, 40, 3, {{"gpus_per_node", 2}, {"nodes", 2}});
  spec["recipe"]["device"] = "cpu";
  auto sweep = Submit(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  for (const char* n : {"node-a", "node-b"}) {
    ASSERT_NE(StartWorker(n, {{"WRPN_FAKE_EPOCH_MS", "100"}},
                          {"--gpus", "2", "--rendezvous-port", std::to_string(FreePort())}),
              nullptr);
  }
  // (trial, attempt) -> rank -> pid of the live fake trainers.
  auto ranks = [&](int attempt) {
    std::map<int, pid_t> out;
    for (const auto& [pid, what] : Trainers()) {
      std::istringstream in(what);
      int64_t t;
      int a, r;
      in >> t >> a >> r;
      if (a == attempt) out[r] = pid;
    }
    return out;
  };
  ASSERT_TRUE(WaitFor([&] {
    auto r = ListTrials(*sweep, pb::TRIAL_RUNNING);
    return r.ok() && !r->empty() && r->at(0).checkpoint_epoch() >= 2 && ranks(1).size() == 4;
  }, 30s)) << "the gang never ran 4 ranks";
  const auto first = ranks(1);
  const int64_t trial = ListTrials(*sweep)->at(0).id();
  ASSERT_EQ(::kill(first.at(3), SIGKILL), 0);  // world rank 3: node 1, local rank 1
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& [rank, pid] : first) {
      if (Alive(pid)) return false;
    }
    return true;
  }, 20s)) << "a rank of the failed attempt is still running";
  const double all_stopped_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_TRUE(WaitForSweep(*sweep, 60s));
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok());
  ASSERT_GE(t->attempts_size(), 2);  // more only if the loaded machine let a lease lapse
  const auto& a1 = t->attempts(0);
  const auto& a2 = t->attempts(t->attempts_size() - 1);
  EXPECT_EQ(a1.outcome(), pb::ATTEMPT_FAILED);
  EXPECT_THAT(a1.reason(), HasSubstr("rank 3"));
  EXPECT_THAT(a1.reason(), HasSubstr("SIGKILL"));
  EXPECT_EQ(a2.outcome(), pb::ATTEMPT_SUCCEEDED);
  ASSERT_EQ(a2.worker_ids_size(), 2) << "the whole gang was rescheduled";
  EXPECT_NE(a2.worker_ids(0), a2.worker_ids(1));
  ExpectEachTrialEndedOnce(*sweep);
  std::cout << "[chaos] gang rank SIGKILL: all 4 ranks of the attempt stopped "
            << all_stopped_s << " s after the kill; attempt 2 on " << a2.worker_ids(0) << ","
            << a2.worker_ids(1) << "; reason: " << a1.reason() << "; test "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
