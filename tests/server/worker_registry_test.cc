// WorkerRegistry: ids, liveness, queued commands and the scheduler's view of the workers.
#include "server/worker_registry.h"

#include <gtest/gtest.h>

#include "common/worker_labels.h"

namespace wrpn::server {
namespace {

using namespace std::chrono_literals;

const SteadyTime kT0{};

WorkerRecord Worker(const std::string& id, int gpus, int cpu_slots = 1) {
  WorkerRecord w;
  w.id = id;
  w.name = id + "-name";
  for (int i = 0; i < gpus; ++i) w.gpus.push_back({i, 0, ""});
  w.max_cpu_trials = cpu_slots;
  return w;
}

TEST(WorkerRegistry, NewIdsContinueAfterTheLoadedOnes) {
  WorkerRegistry r;
  r.Load({Worker("w-3", 0), Worker("w-7", 0)}, kT0);
  EXPECT_EQ(r.NewId(), "w-8");
  r.Put(Worker("w-9", 0), kT0);
  EXPECT_EQ(r.NewId(), "w-10") << "w-9 is taken";
  ASSERT_NE(r.Find("w-3"), nullptr);
  EXPECT_EQ(r.Find("w-4"), nullptr);
}

TEST(WorkerRegistry, SilentWorkersAreLostUntilTheyCallAgain) {
  WorkerRegistry r;
  r.Load({Worker("w-1", 0), Worker("w-2", 0)}, kT0);
  EXPECT_FALSE(r.Touch(*r.Find("w-2"), kT0 + 20s, 1234));
  EXPECT_EQ(r.Find("w-2")->rec.last_heartbeat_ms, 1234);
  std::vector<WorkerRecord> lost = r.MarkSilentLost(kT0 + 31s, 30s);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].id, "w-1");
  EXPECT_TRUE(lost[0].lost);
  EXPECT_TRUE(r.MarkSilentLost(kT0 + 32s, 30s).empty()) << "marked once";
  EXPECT_TRUE(r.Touch(*r.Find("w-1"), kT0 + 40s, 0)) << "alive again: the record changed";
  EXPECT_FALSE(r.Find("w-1")->rec.lost);
}

TEST(WorkerRegistry, ViewsSubtractLeasesAndCapByTheReportedGpus) {
  WorkerRegistry r;
  WorkerRecord slurm = Worker("w-3", 0);
  slurm.labels[kSlurmStepNodesLabel] = "4";
  WorkerRecord lost = Worker("w-4", 8);
  lost.lost = true;
  r.Load({Worker("w-1", 4, 2), Worker("w-2", 2), slurm, lost}, kT0);
  r.Find("w-2")->rec.draining = true;
  LeaseTable leases;
  LeaseEntry l;
  l.lease_id = "l-1-0";
  l.worker_id = "w-1";
  l.gpus = 3;
  leases.Add(l);
  l.lease_id = "l-2-0";
  l.gpus = 0;
  leases.Add(l);
  std::vector<WorkerView> v = r.Views(leases, "w-1", 0, true);
  ASSERT_EQ(v.size(), 3u) << "a lost worker is left out";
  EXPECT_EQ(v[0].free_gpus, 0) << "capped by the 0 it reported";
  EXPECT_EQ(v[0].free_cpu_slots, 1);
  EXPECT_FALSE(v[1].schedulable) << "draining";
  EXPECT_EQ(v[2].step_nodes, 4);
  v = r.Views(leases, "", 0, false);
  EXPECT_EQ(v[0].free_gpus, 1);
  EXPECT_EQ(r.Views(leases, "w-4", 8, true).size(), 4u) << "the lost worker asking is alive";
}

TEST(WorkerRegistry, CommandsAreTakenOnceAndRendezvousAddress) {
  WorkerRegistry r;
  WorkerRecord w = Worker("w-1", 0);
  w.address = "10.0.0.1";
  r.Load({w, Worker("w-2", 0)}, kT0);
  pb::WorkerCommand c;
  c.mutable_lease()->set_lease_id("l-1-0");
  r.Find("w-1")->commands.push_back(c);
  pb::HeartbeatResponse resp;
  EXPECT_EQ(r.TakeCommands(*r.Find("w-1"), resp.mutable_commands()),
            (std::set<std::string>{"l-1-0"}));
  EXPECT_EQ(resp.commands_size(), 1);
  EXPECT_TRUE(r.TakeCommands(*r.Find("w-1"), resp.mutable_commands()).empty());
  EXPECT_EQ(r.RendezvousAddress("w-1"), "10.0.0.1");
  EXPECT_EQ(r.RendezvousAddress("w-2"), "w-2-name") << "no address: the name";
  EXPECT_EQ(r.RendezvousAddress("w-9"), "");
}

}  // namespace
}  // namespace wrpn::server
