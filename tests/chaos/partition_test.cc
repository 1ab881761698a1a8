// Network partition: a worker runs in its own network namespace, joined to the root namespace by
// a veth pair with test-local addresses (10.213.N.0/30); the coordinator listens on every address,
// so the veth one too. Mid-trial the link is cut: the lease expires, the trial moves to a worker
// in the root namespace and completes there; when the link returns the partitioned worker's late
// reports are refused by fencing (nothing of them is stored) and it stops its stale trainer.
// Needs root and `ip netns`; skips otherwise.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/chaos/chaos_harness.h"

namespace wrpn::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

// The namespace and veth pair; removed on destruction.
struct Island {
  std::string ip, ns, root_if, ns_if, root_addr, ns_addr;
  bool up = false;
  std::string error;

  Island() {
    ip = IpBinary();
    const int n = static_cast<int>(::getpid() % 250) + 1;
    ns = "wrpn-chaos-" + std::to_string(::getpid());
    root_if = "wch" + std::to_string(::getpid() % 1000000) + "a";
    ns_if = "wch" + std::to_string(::getpid() % 1000000) + "b";
    root_addr = "10.213." + std::to_string(n) + ".1";
    ns_addr = "10.213." + std::to_string(n) + ".2";
    if (ip.empty()) {
      error = "no `ip` binary";
      return;
    }
    for (const std::string& cmd :
         {ip + " netns add " + ns,
          ip + " link add " + root_if + " type veth peer name " + ns_if,
          ip + " link set " + ns_if + " netns " + ns,
          ip + " addr add " + root_addr + "/30 dev " + root_if,
          ip + " link set " + root_if + " up",
          ip + " -n " + ns + " addr add " + ns_addr + "/30 dev " + ns_if,
          ip + " -n " + ns + " link set " + ns_if + " up",
          ip + " -n " + ns + " link set lo up"}) {
      std::string out;
      if (Shell(cmd, &out) != 0) {
        error = "`" + cmd + "` failed: " + out;
        return;
      }
    }
    up = true;
  }
  // Whether a TCP connection from inside the namespace reaches host:port.
  bool Reaches(const std::string& host, int port) {
    return Shell(ip + " netns exec " + ns + " timeout 2 bash -c 'exec 3<>/dev/tcp/" + host + "/" +
                 std::to_string(port) + "'") == 0;
  }
  ~Island() {
    if (!ip.empty()) {
      Shell(ip + " link del " + root_if);
      Shell(ip + " netns del " + ns);
    }
  }
  int Link(bool on) { return Shell(ip + " link set " + root_if + (on ? " up" : " down")); }
};

TEST_F(ChaosTest, PartitionedWorkerLosesItsLeaseAndIsFencedWhenTheLinkReturns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns (euid " << ::geteuid() << ")";
  const auto t0 = std::chrono::steady_clock::now();
  Island island;
  if (!island.up) GTEST_SKIP() << "network namespaces unavailable: " << island.error;

  StartCoordinator(Flags(2, "0.0.0.0"));
  if (!WaitUntil([&] { return island.Reaches(island.root_addr, grpc_port_); }, 10s, 200ms))
    GTEST_SKIP() << "no TCP from namespace " << island.ns << " to " << island.root_addr;
  const std::string via_veth = island.root_addr + ":" + std::to_string(grpc_port_);
  agent::Process* far = StartWorker("island", {{"WRPN_FAKE_EPOCH_MS", "300"}},
                                    {"--address", island.ns_addr},
                                    {island.ip, "netns", "exec", island.ns}, via_veth);
  ASSERT_NE(far, nullptr);
  auto sweep = Submit(SweepSpec("partition", {1}, {"2/2"}, 40));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  int64_t trial = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto r = ListTrials(*sweep, pb::TRIAL_RUNNING);
    if (!r.ok() || r->empty() || r->at(0).checkpoint_epoch() < 2) return false;
    trial = r->at(0).id();
    return true;
  }, 30s)) << "the island worker never made progress";
  pid_t stale = 0;
  for (const auto& [pid, what] : Trainers()) {
    if (what.rfind(std::to_string(trial) + " 1 ", 0) == 0) stale = pid;
  }
  ASSERT_GT(stale, 0);

  ASSERT_EQ(island.Link(false), 0);
  const auto cut = std::chrono::steady_clock::now();
  ASSERT_NE(StartWorker("mainland", {{"WRPN_FAKE_EPOCH_MS", "20"}}), nullptr);
  ASSERT_TRUE(WaitForSweep(*sweep, 60s));
  const double moved_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  auto t = GetTrial(trial);
  ASSERT_TRUE(t.ok());
  std::string attempts;
  for (const auto& a : t->attempts())
    attempts += "\n  attempt " + std::to_string(a.attempt()) + " " +
                pb::AttemptOutcome_Name(a.outcome()) + " " + a.reason();
  ASSERT_GE(t->attempts_size(), 2) << attempts;
  EXPECT_EQ(t->attempts(0).outcome(), pb::ATTEMPT_EXPIRED);
  EXPECT_EQ(t->attempts(t->attempts_size() - 1).outcome(), pb::ATTEMPT_SUCCEEDED);
  EXPECT_TRUE(Alive(stale)) << "the partitioned trainer runs on, unaware";
  const int64_t rows_before = CountMetricRows(db_path_, trial, 1);

  ASSERT_EQ(island.Link(true), 0);
  const auto healed = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return !Alive(stale); }, 40s)) << "stale trainer still running";
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count();
  EXPECT_TRUE(WaitFor([&] {
    return ReadFile((fs::path(dir_) / "island" / "attempts" /
                     ("t" + std::to_string(trial) + "-a1-n0") / "agent.log")
                        .string())
               .find("lease dropped") != std::string::npos;
  }, 10s));
  EXPECT_EQ(CountMetricRows(db_path_, trial, 1), rows_before)
      << "a late report of the expired attempt was stored";
  ExpectEachTrialEndedOnce(*sweep);
  EXPECT_FALSE(far->Exited().has_value()) << "the island worker keeps running";
  // How the fencing showed: FORGET_LEASE in a heartbeat reply, or FAILED_PRECONDITION on a report.
  const std::string metrics = HttpMetrics();
  int refused = 0;
  std::istringstream lines(metrics);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("wrpn_rpc_requests_total{", 0) == 0 &&
        line.find("FAILED_PRECONDITION") != std::string::npos)
      refused += std::stoi(line.substr(line.rfind(' ') + 1));
  }
  // Stop the island worker while its link is up: once the namespace is gone its connection would
  // hold the teardown (worker and coordinator shutdown deadlines) for some 20 s.
  Stopped("island");
  far->Terminate();
  EXPECT_TRUE(WaitFor([&] { return far->Exited().has_value(); }, 20s));
  std::cout << "[chaos] partition: trial moved and done " << moved_s
            << " s after the cut (lease TTL 2 s); stale trainer stopped " << stop_s
            << " s after the link returned; " << refused
            << " late report(s) refused with FAILED_PRECONDITION; test "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace wrpn::chaos
