// The per-trial environment and core share (worker/agent/trial_env.h) and the agent's GPU share
// accounting (worker/agent/gpu_slots.h), with a fake GPU inventory.
#include "worker/agent/trial_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/gpu_share.h"
#include "worker/agent/gpu_slots.h"

namespace wrpn::agent {
namespace {

using ::testing::HasSubstr;
namespace pb = ::wrpn::v1;

TEST(TrialEnvTest, CpuTrialsSeeNoGpu) {
  auto env = TrialEnvironment({});
  EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "");
  EXPECT_EQ(env.count("WRPN_GPU_SHARE"), 0u);
  EXPECT_EQ(env.size(), 1u);
}

TEST(TrialEnvTest, GpuTrialsGetTheirDevicesShareAndCap) {
  auto whole = TrialEnvironment({{2, 3}, 0, 0, {}});
  EXPECT_EQ(whole.at("CUDA_VISIBLE_DEVICES"), "2,3");
  EXPECT_EQ(whole.at("WRPN_GPU_SHARE"), "1");
  EXPECT_EQ(whole.count("WRPN_GPU_MEMORY_BYTES"), 0u);
  auto quarter = TrialEnvironment({{1}, 0.25, 3LL << 30, {}});
  EXPECT_EQ(quarter.at("CUDA_VISIBLE_DEVICES"), "1");
  EXPECT_EQ(quarter.at(kGpuShareEnv), "0.25");
  EXPECT_EQ(quarter.at(kGpuMemoryBytesEnv), "3221225472");
  EXPECT_EQ(quarter.count("CUDA_MPS_PIPE_DIRECTORY"), 0u);
}

TEST(TrialEnvTest, UnderMpsClientsFindTheDaemonAndGetTheirShareOfTheSms) {
  const MpsDirs mps{"/w/mps/pipe", "/w/mps/log"};
  auto third = TrialEnvironment({{0}, 1.0 / 3, 0, mps});
  EXPECT_EQ(third.at("CUDA_MPS_PIPE_DIRECTORY"), "/w/mps/pipe");
  EXPECT_EQ(third.at("CUDA_MPS_LOG_DIRECTORY"), "/w/mps/log");
  EXPECT_EQ(third.at("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"), "33");
  auto whole = TrialEnvironment({{0}, 0, 0, mps});
  EXPECT_EQ(whole.count("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"), 0u) << "a whole GPU: all SMs";
  EXPECT_EQ(TrialEnvironment({{}, 0, 0, mps}).count("CUDA_MPS_PIPE_DIRECTORY"), 0u);
}

TEST(TrialEnvTest, CoresFollowTheTrialsShareOfTheWorker) {
  // (cpus, worker GPUs, trial GPUs, CPU slots, ranks) -> cores per rank
  struct Row { int cpus, gpus; double trial; int slots, ranks, want; };
  for (const Row& r : std::vector<Row>{{16, 0, 0, 4, 1, 4},   // CPU: one of 4 slots
                                       {16, 0, 0, 2, 2, 4},   // 2 ranks of a half
                                       {16, 2, 0.25, 1, 1, 2},  // 1/4 of one of 2 GPUs
                                       {16, 1, 0.25, 1, 1, 4},
                                       {16, 8, 8, 1, 8, 2},   // a whole 8-GPU trial
                                       {2, 1, 0.0625, 1, 1, 1}}) {  // never 0
    EXPECT_EQ(RankCores(r.cpus, r.gpus, r.trial, r.slots, r.ranks), r.want)
        << r.cpus << " " << r.gpus << " " << r.trial << " " << r.slots << " " << r.ranks;
  }
}

TEST(TrialEnvTest, MpsNeedsItsControlBinary) {
  setenv("PATH", "/nonexistent", 1);
  EXPECT_EQ(FindMpsControl(), "");
}

pb::Lease Frac(double share, std::vector<int> slots = {}) {
  pb::Lease l;
  l.set_gpu_share(share);
  for (int s : slots) l.add_gpu_slots(s);
  return l;
}

TEST(GpuSlotsTest, SharesAddUpToOneGpuAndNoMore) {
  GpuSlots g(2);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(g.Take(Frac(0.25, {0}), 1).ok());
  EXPECT_EQ(g.used(0), kGpuShareUnits);
  auto over = g.Take(Frac(0.0625, {0}), 1);
  ASSERT_FALSE(over.ok());
  EXPECT_THAT(over.status().message(), HasSubstr("GPU slot 0 has 0 of its share free"));
  EXPECT_EQ(g.Idle(), 1);
  pb::Lease whole;
  whole.set_gpus_per_node(1);
  whole.add_gpu_slots(0);
  EXPECT_FALSE(g.Take(whole, 1).ok()) << "a whole-GPU trial needs an idle GPU";
  g.Give({0}, kGpuShareUnits / 4);
  EXPECT_EQ(g.Wanted(), 16 + 4);
  EXPECT_THAT(g.Take(Frac(0.25, {7}), 1).status().message(), HasSubstr("GPU slot 7 does not exist"));
  EXPECT_THAT(g.Take(Frac(0.25, {0, 1}), 1).status().message(), HasSubstr("places 2 GPU(s) for 1"));
}

}  // namespace
}  // namespace wrpn::agent
