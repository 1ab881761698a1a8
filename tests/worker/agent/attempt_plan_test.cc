// The attempt planner (worker/agent/attempt_plan.h): a lease, the worker's options and its free
// GPUs -> ranks, GPUs, folders, the typed trial config and each rank's process, or the failure.
#include "worker/agent/attempt_plan.h"

#include "common/gpu_share.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn::agent {
namespace {

using ::testing::HasSubstr;

class AttemptPlanTest : public testing::Test {
 protected:
  void SetUp() override {
    options_.name = "box";
    options_.cpus = 8;
    options_.max_cpu_trials = 2;
    options_.trainer = "/opt/wrpn-train";
    options_.work_dir = "/var/wrpn";
    options_.data_dir = "/data";
    for (int i = 0; i < 4; ++i) {
      pb::Gpu g;
      g.set_index(10 + i);
      options_.gpus.push_back(g);
    }
    lease_.set_trial_id(7);
    lease_.set_attempt(2);
    lease_.set_trial_config_json(R"({"network":"lenet5","epochs":3})");
  }
  // The worker's GPU slots with all but `free_gpus` held by whole-GPU trials.
  GpuSlots Slots(const std::vector<int>& free_gpus) const {
    GpuSlots slots(options_.gpus.size());
    for (int g = 0; g < static_cast<int>(options_.gpus.size()); ++g) {
      if (std::find(free_gpus.begin(), free_gpus.end(), g) == free_gpus.end())
        slots.Hold({g}, kGpuShareUnits);
    }
    return slots;
  }
  AttemptPlan Plan(const std::vector<int>& free_gpus = {}) {
    auto p = PlanAttempt(lease_, options_, Slots(free_gpus));
    EXPECT_TRUE(std::holds_alternative<AttemptPlan>(p)) << std::get<FailedEvent>(p).reason;
    return std::holds_alternative<AttemptPlan>(p) ? std::get<AttemptPlan>(p) : AttemptPlan{};
  }
  FailedEvent Refused(const std::vector<int>& free_gpus = {}) {
    auto p = PlanAttempt(lease_, options_, Slots(free_gpus));
    EXPECT_TRUE(std::holds_alternative<FailedEvent>(p));
    return std::holds_alternative<FailedEvent>(p) ? std::get<FailedEvent>(p) : FailedEvent{};
  }
  AgentOptions options_;
  pb::Lease lease_;
};

// A Pareto rung (docs/pareto.md): the lease's stop epoch reaches the trainer; the lease is the only
// source (a stop epoch in the trial config is the coordinator's to set, not the config's).
TEST_F(AttemptPlanTest, TheLeasesStopEpochReachesTheTrainer) {
  EXPECT_EQ(Plan().config.stop_at_epoch, 0);
  lease_.set_stop_at_epoch(2);
  EXPECT_EQ(Plan().config.stop_at_epoch, 2);
  lease_.set_stop_at_epoch(0);
  lease_.set_trial_config_json(R"({"network":"lenet5","epochs":10,"stop_at_epoch":2})");
  EXPECT_EQ(Plan().config.stop_at_epoch, 0) << "the lease says: to the end";
  lease_.set_stop_at_epoch(-1);
  EXPECT_THAT(Refused().reason, HasSubstr("stop_at_epoch: must be >= 0, got -1"));
}

TEST_F(AttemptPlanTest, ACpuTrialGetsItsFoldersDeviceAndCoreShare) {
  const AttemptPlan p = Plan();
  EXPECT_EQ(p.nproc, 1);
  EXPECT_EQ(p.world_size, 1);
  EXPECT_TRUE(p.gpus.empty());
  EXPECT_EQ(p.dir, "/var/wrpn/attempts/t7-a2-n0");
  EXPECT_EQ(p.ckpt_dir, "/var/wrpn/checkpoints/trial-7/attempt-2");
  EXPECT_EQ(p.config_path, "/var/wrpn/attempts/t7-a2-n0/trial.json");
  EXPECT_EQ(p.config.network, "lenet5");
  EXPECT_EQ(p.config.epochs, 3);
  EXPECT_EQ(p.config.device, "cpu");
  EXPECT_EQ(p.config.checkpoint_dir, p.ckpt_dir);
  EXPECT_FALSE(p.config.resume);
  EXPECT_EQ(p.config.threads, 4) << "8 cores over 2 concurrent CPU trials";
  EXPECT_EQ(p.config.cpu_cores, 4);
  EXPECT_EQ(p.config.dataset.path, "/data/fashion-mnist");
  const ProcessSpec s = RankSpec(p, lease_, options_, 0, 0);
  EXPECT_EQ(s.argv, (std::vector<std::string>{"/opt/wrpn-train", "train", "--config", p.config_path}));
  EXPECT_EQ(s.cwd, p.dir);
  EXPECT_EQ(s.env.at("CUDA_VISIBLE_DEVICES"), "");
  EXPECT_EQ(s.env.count("RANK"), 0u);
  EXPECT_EQ(s.env.at("WRPN_TRIAL_ID"), "7");
}

TEST_F(AttemptPlanTest, AGpuTrialTakesTheFirstFreeGpusOrIsRefused) {
  lease_.set_gpus_per_node(2);
  lease_.set_trial_config_json(R"({"network":"resnet20","device":"cuda","threads":3})");
  const AttemptPlan p = Plan({1, 2, 3});
  EXPECT_EQ(p.gpus, (std::vector<int>{1, 2}));
  EXPECT_EQ(p.nproc, 2);
  EXPECT_EQ(p.config.device, "cuda");
  EXPECT_EQ(p.config.threads, 3) << "set by the trial";
  EXPECT_EQ(p.config.cpu_cores, 2) << "8 cores over 2 ranks of 2 concurrent 2-GPU trials";
  const ProcessSpec s = RankSpec(p, lease_, options_, 1, 29500);
  EXPECT_EQ(s.env.at("CUDA_VISIBLE_DEVICES"), "11,12");
  EXPECT_EQ(s.env.at("RANK"), "1");
  EXPECT_EQ(s.env.at("WORLD_SIZE"), "2");
  EXPECT_EQ(s.env.at("MASTER_ADDR"), "127.0.0.1");
  EXPECT_EQ(s.env.at("MASTER_PORT"), "29500");
  const FailedEvent f = Refused({3});
  EXPECT_EQ(f.kind, FailureKind::kInternal);
  EXPECT_EQ(f.reason, "worker box: 1 of this worker's 4 GPUs are idle; the trial needs 2");
}

TEST_F(AttemptPlanTest, BadConfigsAreConfigFailuresNamingTheField) {
  lease_.set_trial_config_json("not json");
  EXPECT_EQ(Refused().reason, "trial_config_json is not a JSON object");
  lease_.set_trial_config_json(R"({"network":"lenet5","epochs":0})");
  FailedEvent f = Refused();
  EXPECT_EQ(f.kind, FailureKind::kConfig);
  EXPECT_EQ(f.reason, "epochs: must be >= 1, got 0");
  lease_.set_trial_config_json(R"({"network":"lenet5","epochz":3})");
  EXPECT_THAT(Refused().reason, HasSubstr("epochz: unknown field"));
  lease_.set_trial_config_json(R"({"dataset":{"kind":"mnist","path":"/etc"}})");
  f = Refused();
  EXPECT_EQ(f.kind, FailureKind::kConfig);
  EXPECT_THAT(f.reason, HasSubstr("dataset.path: '/etc' is outside the allowed folders (/data)"));
}

TEST_F(AttemptPlanTest, DatasetPathsAreResolvedUnderTheDataDir) {
  lease_.set_trial_config_json(R"({"dataset":{"kind":"cifar10","path":"c10"}})");
  EXPECT_EQ(Plan().config.dataset.path, "/data/c10");
  lease_.set_trial_config_json(R"({"dataset":{"kind":"synthetic"}})");
  EXPECT_EQ(Plan().config.dataset.path, "") << "synthetic reads no files";
}

TEST_F(AttemptPlanTest, OnlyCheckpointsUnderTheRootAreResumed) {
  lease_.set_resume_checkpoint("/var/wrpn/checkpoints/trial-7/attempt-1/last.pt");
  AttemptPlan p = Plan();
  EXPECT_EQ(p.resume_from, lease_.resume_checkpoint());
  EXPECT_TRUE(p.notes.empty());
  lease_.set_resume_checkpoint("/etc/shadow");
  p = Plan();
  EXPECT_EQ(p.resume_from, "");
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_THAT(p.notes[0], HasSubstr("is outside this worker's checkpoint root"));
}

// recipe.init_from: fp32: the FP32 checkpoint comes from the lease, only from under the root.
TEST_F(AttemptPlanTest, TheFp32CheckpointFromTheLeaseMustLieUnderTheRoot) {
  lease_.set_trial_config_json(
      R"({"network":"lenet5","epochs":3,"wbits":2,"abits":2,"scheme":"lsq","init_from":"fp32",)"
      R"("init_checkpoint":"/elsewhere/last.pt"})");
  lease_.set_init_checkpoint("/var/wrpn/checkpoints/trial-3/attempt-1/last.pt");
  EXPECT_EQ(Plan().config.init_checkpoint, lease_.init_checkpoint()) << "the config's is ignored";
  lease_.set_init_checkpoint("/etc/shadow");
  const FailedEvent f = Refused();
  EXPECT_EQ(f.kind, FailureKind::kConfig);
  EXPECT_THAT(f.reason, HasSubstr("init_checkpoint: '/etc/shadow' is outside"));
}

TEST_F(AttemptPlanTest, GangNodesTakeTheRendezvousFromTheLease) {
  lease_.set_gpus_per_node(1);
  lease_.set_trial_config_json(R"({"device":"cuda"})");
  pb::Rendezvous* rv = lease_.mutable_rendezvous();
  rv->set_nnodes(3);
  rv->set_node_rank(0);
  rv->set_master_addr("10.0.0.5:29600");
  AttemptPlan p = Plan({0});
  EXPECT_TRUE(p.gang);
  EXPECT_TRUE(p.hosts_store);
  EXPECT_EQ(p.master_addr, "10.0.0.5");
  EXPECT_EQ(p.master_port, 29600) << "the registered fixed port";
  EXPECT_EQ(p.world_size, 3);
  rv->set_node_rank(2);
  rv->set_master_addr("10.0.0.5");
  EXPECT_EQ(Refused({0}).reason,
            "the coordinator sent node rank 2 no rendezvous port (rank 0 has not reported one)");
  rv->set_master_port(29501);
  p = Plan({0});
  EXPECT_FALSE(p.hosts_store);
  EXPECT_EQ(p.dir, "/var/wrpn/attempts/t7-a2-n2");
  EXPECT_EQ(p.ckpt_dir, "/var/wrpn/checkpoints/trial-7/attempt-2-node-2");
  EXPECT_EQ(RankSpec(p, lease_, options_, 0, 29501).env.at("RANK"), "2");
}

}  // namespace
}  // namespace wrpn::agent
