// SrunLauncher with the real fork/exec launcher and stand-in srun/squeue/scancel scripts that
// print what Slurm's would and record their arguments; the Slurm job environment of a worker.
#include "worker/agent/srun_launcher.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/agent/slurm_worker.h"

namespace wrpn::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SrunLauncherTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wrpn-srun-test-" + std::to_string(::getpid()) + "-" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // srun: records its argv, prints as `srun --label` does, waits for the test's go.
    Script("srun", "echo \"$@\" > " + Path("srun.args") + "\n"
           "echo '0: {\"event\":\"epoch\"}'\necho ' 1: rank one speaks'\necho 'srun: note' >&2\n"
           "echo '1: rank one error' >&2\n"
           "while [ ! -e " + Path("go") + " ]; do sleep 0.01; done\nexit 4\n");
    Script("squeue", "echo '7.0 other-step'\necho '7.3 wrpn-t5-a2'\n");
    Script("scancel", "echo \"$@\" >> " + Path("scancel.args") + "\ntouch " + Path("go") + "\n");
    options_.srun = Path("srun");
    options_.squeue = Path("squeue");
    options_.scancel = Path("scancel");
    options_.job_id = "7";
    options_.wait_s = 12;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Script(const std::string& name, const std::string& body) {
    std::ofstream(Path(name)) << "#!/bin/sh\n" << body;
    fs::permissions(Path(name), fs::perms::owner_all);
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static ProcessSpec StepSpec() {
    ProcessSpec spec;
    spec.argv = {"/opt/wrpn-train", "train", "--config", "trial.json"};
    spec.env["MASTER_PORT"] = "29411";
    spec.env["CUDA_VISIBLE_DEVICES"] = "0,1";
    spec.slurm_step = SlurmStep{2, 2, 2, "wrpn-t5-a2"};
    return spec;
  }

  fs::path dir_;
  SrunOptions options_;
  ForkExecLauncher local_;
};

TEST_F(SrunLauncherTest, TheStepsCommandLineAsksSlurmForTheNodesTasksAndGpus) {
  options_.extra_args = {"--partition=gpu"};
  EXPECT_THAT(SrunArgv(options_, StepSpec()),
              ElementsAre(Path("srun"), "--nodes=2", "--ntasks=4", "--ntasks-per-node=2",
                          "--job-name=wrpn-t5-a2", "--label", "--kill-on-bad-exit=0", "--wait=12",
                          "--export=ALL", "--gpus-per-node=2", "--partition=gpu",
                          "/opt/wrpn-train", "train", "--config", "trial.json"));
}

TEST_F(SrunLauncherTest, RelaysTaskZerosStdoutAndSignalsTheStepNotSrun) {
  SrunLauncher launcher(&local_, options_);
  ProcessSpec spec = StepSpec();
  spec.argv[0] = "/bin/true";
  auto p = launcher.Launch(spec);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> out, err;
  for (int i = 0; i < 500 && (out.empty() || err.size() < 3); ++i) {
    for (auto& l : (*p)->TakeStdoutLines()) out.push_back(l);
    for (auto& l : (*p)->TakeStderrLines()) err.push_back(l);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(out, ElementsAre(R"({"event":"epoch"})"));
  EXPECT_THAT(err, testing::UnorderedElementsAre("srun: note", "1: rank one error",
                                                 "1: (stdout) rank one speaks"));
  EXPECT_THAT(Read("srun.args"), HasSubstr("--gpus-per-node=2"));
  (*p)->Terminate();
  EXPECT_EQ(Read("scancel.args"), "--signal=TERM 7.3\n") << "SIGTERM to the step's tasks";
  std::optional<ExitStatus> e;
  for (int i = 0; i < 500 && !(e = (*p)->Exited()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->exit_code, 4) << "srun's exit is its tasks' (4: interrupted, checkpointed)";
}

TEST_F(SrunLauncherTest, SpecsWithoutAStepRunLocallyAndTheLocalLauncherRefusesSteps) {
  SrunLauncher launcher(&local_, options_);
  ProcessSpec plain;
  plain.argv = {"/bin/sh", "-c", "echo local"};
  auto p = launcher.Launch(plain);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> out;
  for (int i = 0; i < 500 && out.empty(); ++i) {
    out = (*p)->TakeStdoutLines();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(out, ElementsAre("local"));
  EXPECT_FALSE(fs::exists(Path("srun.args")));

  auto refused = local_.Launch(StepSpec());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("srun launcher"));
  ProcessSpec bad = StepSpec();
  bad.slurm_step->name = "two words";
  EXPECT_EQ(launcher.Launch(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SplitTaskLabelTest, ReadsSrunsLabels) {
  EXPECT_EQ(SplitTaskLabel("0: {}"), std::make_pair(0, std::string("{}")));
  EXPECT_EQ(SplitTaskLabel(" 12: a: b"), std::make_pair(12, std::string("a: b")));
  EXPECT_FALSE(SplitTaskLabel("srun: error: n1: task 0").has_value());
  EXPECT_FALSE(SplitTaskLabel("{\"a\": 1}").has_value());
}

EnvLookup Env(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

TEST(SlurmWorkerTest, NamesCpusAndGpusComeFromTheJob) {
  auto job = ReadSlurmJob(Env({{"SLURM_JOB_ID", "812"}, {"SLURM_ARRAY_JOB_ID", "800"},
                               {"SLURM_ARRAY_TASK_ID", "12"}, {"SLURMD_NODENAME", "gpu07"},
                               {"SLURM_CPUS_ON_NODE", "32"}, {"SLURM_JOB_NUM_NODES", "2"},
                               {"CUDA_VISIBLE_DEVICES", "2,3"}}));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(SlurmWorkerName(*job), "slurm-800_12-gpu07");
  EXPECT_EQ(job->allocation_id, "812");
  EXPECT_EQ(job->cpus_on_node, 32);
  EXPECT_EQ(job->num_nodes, 2);
  pb::Gpu g;
  g.set_index(3);
  g.set_name("H100");
  std::vector<pb::Gpu> gpus = SlurmGpus(*job, {g});
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index(), 2);
  EXPECT_EQ(gpus[1].name(), "H100");
}

TEST(SlurmWorkerTest, OutsideAJobOrWithBadValuesItSaysWhich) {
  auto none = ReadSlurmJob(Env({}));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("SLURM_JOB_ID"));
  auto bad = ReadSlurmJob(Env({{"SLURM_JOB_ID", "1"}, {"SLURM_CPUS_ON_NODE", "many"}}));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("SLURM_CPUS_ON_NODE"));
  auto uuids = ReadSlurmJob(Env({{"SLURM_JOB_ID", "1"}, {"CUDA_VISIBLE_DEVICES", "GPU-ab12"}}));
  ASSERT_TRUE(uuids.ok());
  EXPECT_FALSE(uuids->gpu_indices.has_value()) << "not indices: keep what nvidia-smi finds";
}

}  // namespace
}  // namespace wrpn::agent
