#include "server/scheduler.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

WorkerView W(const std::string& id, int total, int free, int cpu = 1) {
  return {id, total, free, cpu, true};
}

TEST(PrioritySchedulerTest, PriorityThenSweepThenIndex) {
  PriorityScheduler s;
  s.Enqueue({1, 0, 1, 0, 0, 1});
  s.Enqueue({2, 0, 1, 1, 0, 1});
  s.Enqueue({3, 5, 2, 0, 0, 1});  // later sweep, higher priority
  s.Enqueue({4, 0, 0, 7, 0, 1});  // earlier sweep
  std::vector<WorkerView> workers = {W("a", 0, 0, 4)};
  std::vector<int64_t> order;
  while (auto a = s.Next("a", workers)) order.push_back(a->trial_id);
  EXPECT_EQ(order, (std::vector<int64_t>{3, 4, 1, 2}));
  EXPECT_EQ(s.size(), 0u);
}

TEST(PrioritySchedulerTest, GpuTrialsGoOnlyToWorkersWithEnoughFreeGpus) {
  PriorityScheduler s;
  s.Enqueue({1, 0, 1, 0, 4, 1});
  s.Enqueue({2, 0, 1, 1, 1, 1});
  std::vector<WorkerView> workers = {W("small", 2, 2), W("big", 8, 8)};
  auto a = s.Next("small", workers);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->trial_id, 2);  // the 4-GPU trial does not fit, the 1-GPU one is backfilled
  EXPECT_FALSE(s.Next("small", workers));
  auto b = s.Next("big", workers);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->trial_id, 1);
  EXPECT_EQ(b->worker_ids, std::vector<std::string>{"big"});
}

TEST(PrioritySchedulerTest, GangIsAllOrNothing) {
  PriorityScheduler s;
  s.Enqueue({7, 0, 1, 0, 2, 3});  // 2 GPUs x 3 nodes
  std::vector<WorkerView> two = {W("a", 2, 2), W("b", 2, 2), W("c", 2, 1)};
  EXPECT_FALSE(s.Next("a", two));  // c has only one free GPU: nothing is granted
  EXPECT_TRUE(s.Contains(7));
  std::vector<WorkerView> three = {W("a", 2, 2), W("b", 2, 2), W("c", 2, 2)};
  auto a = s.Next("b", three);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->trial_id, 7);
  EXPECT_EQ(a->worker_ids, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_FALSE(s.Contains(7));
}

TEST(PrioritySchedulerTest, DrainingWorkersAreNotUsed) {
  PriorityScheduler s;
  s.Enqueue({1, 0, 1, 0, 1, 2});
  std::vector<WorkerView> workers = {W("a", 1, 1), W("b", 1, 1)};
  workers[1].schedulable = false;
  EXPECT_FALSE(s.Next("a", workers));
  workers[1].schedulable = true;
  EXPECT_TRUE(s.Next("a", workers));
}

TEST(PrioritySchedulerTest, CpuTrialsNeedASlot) {
  PriorityScheduler s;
  s.Enqueue({1, 0, 1, 0, 0, 1});
  EXPECT_FALSE(s.Next("a", {W("a", 0, 0, 0)}));
  EXPECT_TRUE(s.Next("a", {W("a", 0, 0, 1)}));
}

TEST(PrioritySchedulerTest, UnplaceableSaysWhy) {
  PriorityScheduler s;
  QueuedTrial t{1, 0, 1, 0, 8, 1};
  EXPECT_EQ(s.Unplaceable(t, {}), "no worker is registered");
  EXPECT_EQ(s.Unplaceable(t, {W("a", 4, 4)}), "no worker has 8 GPUs");
  EXPECT_EQ(s.Unplaceable(t, {W("a", 8, 0)}), "");  // busy, but could run it once free
  QueuedTrial gang{2, 0, 1, 0, 8, 2};
  EXPECT_EQ(s.Unplaceable(gang, {W("a", 8, 8), W("b", 4, 4)}),
            "only 1 worker has 8 GPUs; the trial needs 2 nodes");
}

TEST(PrioritySchedulerTest, AWorkerStartingSlurmStepsTakesAGangAlone) {
  PriorityScheduler s;
  s.Enqueue({7, 0, 1, 0, 0, 2});  // 2 nodes (the scheduler itself takes 0-GPU gangs too)
  std::vector<WorkerView> workers = {W("plain", 0, 0), W("step", 0, 0)};
  workers[1].step_nodes = 2;
  auto a = s.Next("step", workers);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->worker_ids, (std::vector<std::string>{"step"})) << "one srun -N2 step";
  s.Enqueue({8, 0, 1, 0, 0, 3});  // more nodes than its allocation: a gang of workers
  workers.push_back(W("third", 0, 0));
  a = s.Next("step", workers);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->worker_ids.size(), 3u);
  s.Enqueue({9, 0, 1, 0, 0, 2});  // a plain worker still gangs with others
  a = s.Next("plain", workers);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->worker_ids.size(), 2u);
  QueuedTrial big{10, 0, 1, 0, 0, 4};
  WorkerView alone = W("step", 0, 0);
  alone.step_nodes = 4;
  EXPECT_EQ(s.Unplaceable(big, {alone}), "");
}

TEST(PrioritySchedulerTest, RemoveAndReenqueue) {
  PriorityScheduler s;
  s.Enqueue({1, 0, 1, 0, 0, 1});
  s.Enqueue({2, 0, 1, 1, 0, 1});
  s.Remove(1);
  s.Remove(99);  // unknown: no-op
  EXPECT_EQ(s.size(), 1u);
  s.Enqueue({1, 0, 1, 0, 0, 1});
  auto a = s.Next("a", {W("a", 0, 0, 1)});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->trial_id, 1);
}

}  // namespace
}  // namespace wrpn::server
