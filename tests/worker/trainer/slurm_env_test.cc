// The trainer's distributed environment from Slurm's (worker/trainer/slurm_env.h).
#include "worker/trainer/slurm_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn::trainer {
namespace {

using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

EnvLookup Lookup(const Env& m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

Env Task(const std::string& procid, const std::string& localid, const std::string& nodeid) {
  return {{"SLURM_PROCID", procid}, {"SLURM_LOCALID", localid}, {"SLURM_NODEID", nodeid},
          {"SLURM_NTASKS", "4"},     {"SLURM_TASK_PID", "4242"}, {"SLURM_JOB_ID", "123456"},
          {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}, {"SLURM_STEP_NODELIST", "gpu[07-08]"},
          {"SLURM_JOB_NODELIST", "gpu[01-09]"}};
}

TEST(SlurmEnvTest, ATaskOfAStepGetsTorchrunsVariables) {
  auto vars = SlurmTorchrunEnv(Lookup(Task("3", "1", "1")), 4242);
  ASSERT_TRUE(vars.ok()) << vars.status();
  EXPECT_EQ(*vars, (Env{{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                        {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "gpu07"},
                        {"MASTER_PORT", "18456"}}));
}

TEST(SlurmEnvTest, TorchrunsVariablesWinAndAForkedChildIsNoTask) {
  Env env = Task("3", "1", "1");
  env["MASTER_PORT"] = "29400";
  env["RANK"] = "0";
  auto vars = SlurmTorchrunEnv(Lookup(env), 4242);
  ASSERT_TRUE(vars.ok());
  EXPECT_EQ(vars->count("RANK"), 0u);
  EXPECT_EQ(vars->count("MASTER_PORT"), 0u);
  EXPECT_EQ(vars->at("WORLD_SIZE"), "4");
  // A trainer that a wrpn-worker (itself an srun task) forked inherits SLURM_*: not its step.
  auto child = SlurmTorchrunEnv(Lookup(Task("1", "0", "1")), 5000);
  ASSERT_TRUE(child.ok());
  EXPECT_TRUE(child->empty());
  EXPECT_TRUE(SlurmTorchrunEnv(Lookup({}), 1)->empty());
}

TEST(SlurmEnvTest, WithoutAStepNodeListTheJobsIsUsed) {
  Env env = Task("0", "0", "0");
  env.erase("SLURM_STEP_NODELIST");
  EXPECT_EQ(SlurmTorchrunEnv(Lookup(env), 4242)->at("MASTER_ADDR"), "gpu01");
}

TEST(SlurmEnvTest, MalformedVariablesAreNamed) {
  Env env = Task("x", "0", "0");
  EXPECT_THAT(std::string(SlurmTorchrunEnv(Lookup(env), 4242).status().message()),
              HasSubstr("SLURM_PROCID"));
  env = Task("4", "0", "0");
  EXPECT_THAT(std::string(SlurmTorchrunEnv(Lookup(env), 4242).status().message()),
              HasSubstr("not below SLURM_NTASKS 4"));
  env = Task("0", "2", "0");
  EXPECT_THAT(std::string(SlurmTorchrunEnv(Lookup(env), 4242).status().message()),
              HasSubstr("SLURM_LOCALID"));
  env = Task("0", "0", "0");
  env["SLURM_STEP_NODELIST"] = "gpu[07";
  EXPECT_THAT(std::string(SlurmTorchrunEnv(Lookup(env), 4242).status().message()),
              HasSubstr("SLURM_STEP_NODELIST"));
}

TEST(SlurmEnvTest, FirstHostOfHostlists) {
  EXPECT_EQ(*FirstHost("f", "n1"), "n1");
  EXPECT_EQ(*FirstHost("f", "n[1-2]"), "n1");
  EXPECT_EQ(*FirstHost("f", "node[007-009,012],gpu5"), "node007");
  EXPECT_EQ(*FirstHost("f", "rack[3]-gpu[1-4]"), "rack3-gpu1");
  EXPECT_EQ(*FirstHost("f", "a,b[1-3]"), "a");
  EXPECT_FALSE(FirstHost("f", "").ok());
  EXPECT_FALSE(FirstHost("f", "n[]").ok());
  EXPECT_FALSE(FirstHost("f", "n]").ok());
}

TEST(SlurmEnvTest, TasksOnNodeReadsCompressedCounts) {
  EXPECT_EQ(*TasksOnNode("f", "2(x3),1", 0), 2);
  EXPECT_EQ(*TasksOnNode("f", "2(x3),1", 2), 2);
  EXPECT_EQ(*TasksOnNode("f", "2(x3),1", 3), 1);
  EXPECT_FALSE(TasksOnNode("f", "2(x3),1", 4).ok());
  EXPECT_FALSE(TasksOnNode("f", "2(x", 0).ok());
  EXPECT_FALSE(TasksOnNode("f", "a", 0).ok());
}

}  // namespace
}  // namespace wrpn::trainer
