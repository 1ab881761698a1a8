// Fractional GPUs end to end (issue #19): a real coordinator and a real worker with a fake GPU
// inventory (--gpus 1) running the fake trainer. Four trials of share 0.25 run at once on the
// one "GPU", each told CUDA_VISIBLE_DEVICES=0 and WRPN_GPU_SHARE=0.25, while a whole-GPU trial
// submitted after them waits its turn and then runs alone; the share gauge shows the GPU full.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST_F(ChaosTest, FourQuarterGpuTrialsShareOneGpuWhileAWholeGpuTrialWaits) {
  const auto t0 = std::chrono::steady_clock::now();
  StartCoordinator(Flags(5));
  auto quarters = Submit(SweepSpec("quarters", {1, 2}, {"32/32", "4/4"}, 30, 1,
                                   {{"gpus_per_node", 0.25}, {"nodes", 1}}));
  ASSERT_TRUE(quarters.ok()) << quarters.status();
  auto whole = Submit(SweepSpec("whole", {1}, {"32/32"}, 5, 1, {{"gpus_per_node", 1}, {"nodes", 1}}));
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_NE(StartWorker("gpu-box", {{"WRPN_FAKE_EPOCH_MS", "100"}},
                        {"--gpus", "1", "--max-cpu-trials", "1"}),
            nullptr);
  // All four quarters run at once on GPU 0, each with its share.
  std::map<pid_t, std::string> running;
  ASSERT_TRUE(WaitFor([&] {
    running = Trainers();
    return running.size() == 4;
  }, 30s)) << "never 4 trainers at once (saw " << running.size() << ")";
  for (const auto& [pid, what] : running) {
    EXPECT_THAT(what, HasSubstr("gpu=0 share=0.25")) << what;
  }
  auto waiting = ListTrials(*whole);
  ASSERT_TRUE(waiting.ok());
  ASSERT_EQ(waiting->size(), 1u);
  EXPECT_EQ(waiting->at(0).state(), pb::TRIAL_QUEUED) << "the whole-GPU trial waits its turn";
  EXPECT_EQ(waiting->at(0).pending_reason(), "waiting for a free worker");
  EXPECT_THAT(HttpMetrics(), HasSubstr("wrpn_worker_gpu_share{worker=\"gpu-box\",gpu=\"0\"} 1"));
  ASSERT_TRUE(WaitForSweep(*quarters, 60s));
  ASSERT_TRUE(WaitForSweep(*whole, 60s));
  ExpectEachTrialEndedOnce(*quarters);
  ExpectEachTrialEndedOnce(*whole);
  // The whole-GPU trial started only once every quarter had finished, and ran alone.
  int64_t last_quarter_ms = 0, first_quarter_start_ms = INT64_MAX;
  auto quarter_trials = ListTrials(*quarters);
  ASSERT_TRUE(quarter_trials.ok()) << quarter_trials.status();
  for (const pb::Trial& t : *quarter_trials) {
    last_quarter_ms = std::max(last_quarter_ms, t.finished_ms());
    first_quarter_start_ms = std::min(first_quarter_start_ms, t.started_ms());
    EXPECT_DOUBLE_EQ(t.gpu_share(), 0.25);
  }
  const pb::Trial w = ListTrials(*whole)->at(0);
  EXPECT_GE(w.started_ms(), last_quarter_ms);
  std::cout << "[chaos] fractional GPUs: 4 x 0.25 on one fake GPU for "
            << (last_quarter_ms - first_quarter_start_ms) / 1000.0
            << " s, then the whole-GPU trial " << (w.finished_ms() - w.started_ms()) / 1000.0
            << " s; test " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
