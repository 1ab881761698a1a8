// Data-parallel training as several processes on CPU with Gloo.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "worker/trainer/communicator.h"
#include "worker/trainer/launcher.h"
#include "worker/trainer/trainer.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

class DistributedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGloo()) GTEST_SKIP() << "this LibTorch has no ProcessGroupGloo";
    dir_ = fs::temp_directory_path() /
           ("wrpn_ddp_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Starts `argv` with stdout and stderr to files; returns the pid.
  pid_t Spawn(std::vector<std::string> argv, const std::string& name,
              std::vector<std::pair<std::string, std::string>> env = {}) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string out = (dir_ / (name + ".out")).string(), err = (dir_ / (name + ".err")).string();
      freopen(out.c_str(), "w", stdout);
      freopen(err.c_str(), "w", stderr);
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }

  // Waits for pid at most `limit`; returns the wait status, or -1 on timeout (after killing it).
  static int WaitFor(pid_t pid, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    int status = 0;
    while (Clock::now() < deadline) {
      if (::waitpid(pid, &status, WNOHANG) == pid) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }

  std::string Read(const std::string& name) const {
    std::ifstream in(dir_ / name);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  std::vector<float> ReadFloats(const std::string& name) const {
    const std::string bytes = Read(name);
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
  }

  fs::path dir_;
};

// 2 ranks with per-rank batch B/2 end where 1 rank with batch B ends after 20 SGD steps.
TEST_F(DistributedTest, TwoRanksMatchOneRankWithTheFullBatch) {
  const int port = PickFreePort();
  const std::string bin = WRPN_DDP_RANK_BINARY;
  const pid_t single = Spawn({bin, "nobn", "0", "1", "0", "32", "20", (dir_ / "single").string()}, "single");
  const pid_t r0 = Spawn({bin, "nobn", "0", "2", std::to_string(port), "32", "20", (dir_ / "r0").string()}, "r0");
  const pid_t r1 = Spawn({bin, "nobn", "1", "2", std::to_string(port), "32", "20", (dir_ / "r1").string()}, "r1");
  for (pid_t p : {single, r0, r1}) {
    const int st = WaitFor(p, std::chrono::seconds(120));
    ASSERT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << Read("r0.err") << Read("r1.err");
  }
  const auto a = ReadFloats("single"), b = ReadFloats("r0"), c = ReadFloats("r1");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(b.size(), c.size());
  ASSERT_GT(a.size(), 1000u);
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(a[i]) - b[i]));
    ASSERT_EQ(b[i], c[i]) << "ranks disagree at " << i;
  }
  std::cout << "max abs difference, 1 rank x 32 vs 2 ranks x 16, 20 SGD steps: " << max_diff << "\n";
  EXPECT_LE(max_diff, 1e-5);
}

// Batch norm: each rank keeps its own statistics during training (like DDP without SyncBatchNorm);
// before evaluation the trainer broadcasts rank 0's buffers so every rank evaluates one model.
TEST_F(DistributedTest, BatchNormStatisticsArePerRankUntilBroadcast) {
  const int port = PickFreePort();
  const std::string bin = WRPN_DDP_RANK_BINARY;
  const pid_t r0 = Spawn({bin, "bn", "0", "2", std::to_string(port), "32", "5", (dir_ / "r0").string()}, "r0");
  const pid_t r1 = Spawn({bin, "bn", "1", "2", std::to_string(port), "32", "5", (dir_ / "r1").string()}, "r1");
  for (pid_t p : {r0, r1}) {
    const int st = WaitFor(p, std::chrono::seconds(120));
    ASSERT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << Read("r0.err") << Read("r1.err");
  }
  const auto a = ReadFloats("r0"), b = ReadFloats("r1");
  ASSERT_EQ(a.size(), b.size());
  const size_t half = a.size() / 2;
  EXPECT_NE(std::vector<float>(a.begin(), a.begin() + half), std::vector<float>(b.begin(), b.begin() + half))
      << "ranks saw different data, so their running statistics must differ";
  EXPECT_EQ(std::vector<float>(a.begin() + half, a.end()), std::vector<float>(b.begin() + half, b.end()));
  EXPECT_EQ(std::vector<float>(a.begin(), a.begin() + half), std::vector<float>(a.begin() + half, a.end()));
}

std::vector<std::string> TrainArgs(const std::string& extra) {
  std::vector<std::string> args = {WRPN_TRAIN_BINARY, "train", "--network", "lenet5", "--dataset",
                                   "synthetic", "--batch-size", "32", "--threads", "1"};
  std::istringstream in(extra);
  for (std::string w; in >> w;) args.push_back(w);
  return args;
}

TEST_F(DistributedTest, LauncherTrainsWithTwoRanksAndResumesExactly) {
  const std::string straight = (dir_ / "straight").string(), split = (dir_ / "split").string();
  pid_t p = Spawn(TrainArgs("--nproc 2 --epochs 2 --checkpoint-dir " + straight), "straight");
  int st = WaitFor(p, std::chrono::seconds(120));
  ASSERT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << Read("straight.err");
  const std::string out = Read("straight.out");
  EXPECT_NE(out.find("\"world_size\":2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"backend\":\"gloo\""), std::string::npos);
  EXPECT_NE(out.find("\"finished\""), std::string::npos);

  p = Spawn(TrainArgs("--nproc 2 --epochs 2 --stop-after-epochs 1 --checkpoint-dir " + split), "split1");
  st = WaitFor(p, std::chrono::seconds(120));
  ASSERT_TRUE(st != -1 && WIFEXITED(st)) << Read("split1.err");
  EXPECT_EQ(WEXITSTATUS(st), kExitInterrupted) << Read("split1.err");
  p = Spawn(TrainArgs("--nproc 2 --epochs 2 --resume --checkpoint-dir " + split), "split2");
  st = WaitFor(p, std::chrono::seconds(120));
  ASSERT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << Read("split2.err");
  EXPECT_NE(Read("split2.out").find("\"start_epoch\":1"), std::string::npos);
  const auto a = ReadCheckpointWeights(CheckpointPath(straight));
  const auto b = ReadCheckpointWeights(CheckpointPath(split));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].second, b[i].second) << a[i].first;
}

std::vector<pid_t> Children(pid_t parent) {
  std::vector<pid_t> kids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == parent) kids.push_back(std::stoi(name));
  }
  return kids;
}

TEST_F(DistributedTest, KillingARankStopsTheLauncherNamingTheRank) {
  const pid_t p = Spawn(TrainArgs("--nproc 2 --epochs 1000"), "kill");
  // Wait (bounded) until training runs, then SIGKILL rank 1.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline && Read("kill.out").find("\"started\"") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(Read("kill.out").find("\"started\""), std::string::npos) << Read("kill.err");
  pid_t victim = -1;
  for (pid_t kid : Children(p)) {
    std::ifstream env("/proc/" + std::to_string(kid) + "/environ");
    std::string all((std::istreambuf_iterator<char>(env)), {});
    if (all.find(std::string("RANK=1\0", 7)) == 0 || all.find(std::string("\0RANK=1\0", 8)) != std::string::npos) victim = kid;
  }
  ASSERT_GT(victim, 0);
  const auto killed_at = Clock::now();
  ::kill(victim, SIGKILL);
  const int st = WaitFor(p, std::chrono::seconds(30));
  ASSERT_NE(st, -1) << "launcher did not exit within 30 s";
  EXPECT_LT(Clock::now() - killed_at, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_NE(Read("kill.out").find("rank 1 was killed by signal 9"), std::string::npos) << Read("kill.out");
  EXPECT_TRUE(Children(p).empty());
}

TEST_F(DistributedTest, AMissingRankIsNamedWithinTheRendezvousTimeout) {
  const std::string port = std::to_string(PickFreePort());
  const auto t0 = Clock::now();
  const pid_t p = Spawn(TrainArgs("--epochs 1 --rendezvous-timeout 3"), "alone",
                        {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}});
  int st = WaitFor(p, std::chrono::seconds(60));
  ASSERT_NE(st, -1);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_NE(Read("alone.out").find("rank 1 of world size 2 never arrived"), std::string::npos) << Read("alone.out");

  // Rank 1 without rank 0: it names rank 0.
  const pid_t q = Spawn(TrainArgs("--epochs 1 --rendezvous-timeout 3"), "orphan",
                        {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}});
  st = WaitFor(q, std::chrono::seconds(60));
  ASSERT_NE(st, -1);
  EXPECT_NE(WEXITSTATUS(st), 0);
  EXPECT_NE(Read("orphan.out").find("rank 0 never arrived"), std::string::npos) << Read("orphan.out");
}

TEST_F(DistributedTest, BatchMustSplitEvenlyAcrossRanks) {
  const pid_t p = Spawn(TrainArgs("--nproc 3 --epochs 1"), "uneven");
  const int st = WaitFor(p, std::chrono::seconds(60));
  ASSERT_TRUE(st != -1 && WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), kExitBadConfig);
  EXPECT_NE(Read("uneven.out").find("batch_size: 32 is not divisible by the world size 3"), std::string::npos)
      << Read("uneven.out");
}

}  // namespace
}  // namespace wrpn::trainer
