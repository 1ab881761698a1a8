// Disk full under the database: the coordinator's SQLite file lives on a small tmpfs the test
// mounts; mid-sweep the rest of it is filled. Writes then fail with a clear RESOURCE_EXHAUSTED
// error, the coordinator stays up and answers reads, nothing already committed is lost, and when
// the space comes back it takes writes again and the sweep completes with every epoch's metrics.
// Needs root (mount); skips otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct SmallDisk {
  std::string path;
  bool mounted = false;
  std::string error;
  explicit SmallDisk(const std::string& p, const std::string& size) : path(p) {
    fs::create_directories(path);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      error = std::string("mount tmpfs: ") + std::strerror(errno);
      return;
    }
    mounted = true;
  }
  ~SmallDisk() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
  // Fills the file system with `filler` until no space is left.
  void Fill() { Shell("dd if=/dev/zero of=" + path + "/filler bs=16k 2>/dev/null; sync"); }
  void Free() { fs::remove(fs::path(path) / "filler"); }
};

int64_t Counter(const std::string& metrics, const std::string& method, const std::string& code) {
  int64_t n = 0;
  std::istringstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("wrpn_rpc_requests_total{", 0) == 0 &&
        line.find("method=\"" + method + "\"") != std::string::npos &&
        line.find("code=\"" + code + "\"") != std::string::npos)
      n += std::stoll(line.substr(line.rfind(' ') + 1));
  }
  return n;
}

TEST_F(ChaosTest, FullDiskFailsWritesClearlyKeepsReadsAndRecovers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  const auto t0 = std::chrono::steady_clock::now();
  SmallDisk disk(dir_ + "/dbfs", "4m");
  if (!disk.mounted) GTEST_SKIP() << disk.error;
  StartCoordinator(Flags(3, "127.0.0.1", disk.path + "/wrpn.db"));
  const int epochs = 30;
  auto sweep = Submit(SweepSpec("before-full", {1, 2}, {"32/32", "2/4"}, epochs));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_NE(StartWorker("solo", {{"WRPN_FAKE_EPOCH_MS", "60"}}, {"--max-cpu-trials", "2"}),
            nullptr);
  // Some trials done, some running.
  ASSERT_TRUE(WaitFor([&] {
    auto done = ListTrials(*sweep, pb::TRIAL_SUCCEEDED);
    auto running = ListTrials(*sweep, pb::TRIAL_RUNNING);
    return done.ok() && running.ok() && !done->empty() && !running->empty() &&
           running->at(0).checkpoint_epoch() >= 2;
  }, 60s));
  std::map<int64_t, double> committed;  // succeeded trial -> final top-1
  auto succeeded = ListTrials(*sweep, pb::TRIAL_SUCCEEDED);
  ASSERT_TRUE(succeeded.ok()) << succeeded.status();
  for (const auto& t : *succeeded) committed[t.id()] = t.final_top1();

  disk.Fill();
  const auto full = std::chrono::steady_clock::now();
  // A write that needs new pages: a 3,000-trial sweep (several MB of trial configs).
  std::vector<double> widths;
  for (int i = 1; i <= 30; ++i) widths.push_back(0.25 * i);
  json big = SweepSpec("too-big", widths, {"32/32", "8/8", "4/4", "2/4", "2/2"}, 1);
  big["axes"]["seed"] = json::array();
  for (int s = 0; s < 20; ++s) big["axes"]["seed"].push_back(s);
  auto refused = Submit(big);
  ASSERT_FALSE(refused.ok()) << "a 3,000-trial sweep fitted on a full disk";
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("disk is full"));
  EXPECT_THAT(refused.status().message(), HasSubstr("wrpn.db"));
  // The coordinator keeps running for a while on a full disk (workers keep reporting) and
  // answers reads all along.
  int reads = 0;
  WaitFor([&] {
    EXPECT_TRUE(CoordinatorAlive());
    auto s = GetSweep(*sweep);
    EXPECT_TRUE(s.ok()) << s.status();
    auto g = GetGrid(*sweep);
    EXPECT_TRUE(g.ok()) << g.status();
    for (const auto& [id, top1] : committed) {
      auto m = GetTrialMetrics(id);
      EXPECT_TRUE(m.ok()) << m.status();
    }
    ++reads;
    return false;
  }, 3s);
  EXPECT_GT(reads, 10);
  const std::string during = HttpMetrics();
  EXPECT_FALSE(during.empty()) << "/metrics answers on a full disk";
  const int64_t failed_writes = Counter(during, "ReportMetrics", "RESOURCE_EXHAUSTED") +
                                Counter(during, "ReportCheckpoint", "RESOURCE_EXHAUSTED") +
                                Counter(during, "CompleteTrial", "RESOURCE_EXHAUSTED") +
                                Counter(during, "AcquireTrial", "RESOURCE_EXHAUSTED") +
                                Counter(during, "SubmitSweep", "RESOURCE_EXHAUSTED");
  for (const auto& [id, top1] : committed) {
    auto t = GetTrial(id);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->trial().state(), pb::TRIAL_SUCCEEDED);
    EXPECT_DOUBLE_EQ(t->trial().final_top1(), top1);
  }

  disk.Free();
  const auto freed = std::chrono::steady_clock::now();
  auto after = Submit(SweepSpec("after-full", {1}, {"4/4"}, 5));
  EXPECT_TRUE(after.ok()) << "writes work again once space is back: " << after.status();
  ASSERT_TRUE(WaitForSweep(*sweep, 90s));
  if (after.ok()) ASSERT_TRUE(WaitForSweep(*after, 60s));
  const double recover_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - freed).count();
  ExpectEachTrialEndedOnce(*sweep);
  // Nothing lost: every committed result as before, and every epoch's top-1 of every trial
  // arrived (points refused while the disk was full were sent again).
  auto trials = ListTrials(*sweep);  // held: a range-for over *ListTrials(..) would dangle
  ASSERT_TRUE(trials.ok()) << trials.status();
  for (const auto& t : *trials) {
    if (committed.count(t.id())) EXPECT_DOUBLE_EQ(t.final_top1(), committed[t.id()]);
    auto m = GetTrialMetrics(t.id());
    ASSERT_TRUE(m.ok()) << "trial " << t.id() << ": " << m.status();
    std::set<int64_t> steps;
    for (const auto& p : m->points()) {
      if (p.name() == "top1") steps.insert(p.step());
    }
    EXPECT_EQ(steps.size(), static_cast<size_t>(epochs)) << "trial " << t.id();
  }
  std::cout << "[chaos] disk full (4 MiB tmpfs): the 3,000-trial submit refused with \""
            << refused.status().message() << "\"; " << reads << " reads answered in 3 s; "
            << failed_writes << " worker/client writes refused while full; "
            << (std::chrono::duration<double>(freed - full).count()) << " s full; sweep done "
            << recover_s << " s after space returned; test "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
