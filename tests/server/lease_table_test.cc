// LeaseTable: leases, expiry order, fencing and what each worker's leases occupy.
#include "server/lease_table.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace wrpn::server {
namespace {

using namespace std::chrono_literals;

const SteadyTime kT0{};

LeaseEntry Lease(const std::string& id, const std::string& worker, int gpus, SteadyTime expires,
                 int64_t token = 7) {
  LeaseEntry l;
  l.lease_id = id;
  l.trial_id = 1;
  l.attempt = 1;
  l.token = token;
  l.worker_id = worker;
  l.gpus = gpus;
  l.expires = expires;
  return l;
}

pb::LeaseRef Ref(const std::string& id, int64_t token) {
  pb::LeaseRef r;
  r.set_lease_id(id);
  r.set_fencing_token(token);
  return r;
}

TEST(LeaseTable, CountsGpusAndCpuSlotsPerWorker) {
  LeaseTable t;
  t.Add(Lease("a", "w-1", 2, kT0 + 10s));
  t.Add(Lease("b", "w-1", 0, kT0 + 10s));
  t.Add(Lease("c", "w-1", 0, kT0 + 10s));
  t.Add(Lease("d", "w-2", 4, kT0 + 10s));
  EXPECT_EQ(t.UsedBy("w-1").gpus, 2);
  EXPECT_EQ(t.UsedBy("w-1").cpu_slots, 2);
  EXPECT_EQ(t.UsedBy("w-2").gpus, 4);
  EXPECT_EQ(t.LeasesOf("w-1"), (std::set<std::string>{"a", "b", "c"}));
  t.Drop("a");
  t.Drop("b");
  t.Drop("nope");  // unknown: no-op
  EXPECT_EQ(t.UsedBy("w-1").gpus, 0);
  EXPECT_EQ(t.UsedBy("w-1").cpu_slots, 1);
  t.Drop("c");
  EXPECT_TRUE(t.LeasesOf("w-1").empty());
  EXPECT_EQ(t.UsedBy("w-1").cpu_slots, 0);
  EXPECT_EQ(t.UsedBy("w-9").gpus, 0) << "a worker without leases uses nothing";
  EXPECT_EQ(t.size(), 1u);
}

TEST(LeaseTable, ExpiresInOrderAndRenewMovesTheDeadline) {
  LeaseTable t;
  t.Add(Lease("late", "w-1", 0, kT0 + 20s));
  t.Add(Lease("early", "w-1", 0, kT0 + 10s));
  EXPECT_EQ(t.FirstExpired(kT0 + 9s), nullptr);
  ASSERT_NE(t.FirstExpired(kT0 + 10s), nullptr);
  EXPECT_EQ(t.FirstExpired(kT0 + 10s)->lease_id, "early");
  t.Renew(*t.Find("early"), kT0 + 30s);
  EXPECT_TRUE(t.Find("early")->delivered);
  EXPECT_EQ(t.FirstExpired(kT0 + 15s), nullptr);
  EXPECT_EQ(t.FirstExpired(kT0 + 25s)->lease_id, "late");
  t.Drop("late");
  EXPECT_EQ(t.FirstExpired(kT0 + 25s), nullptr);
  EXPECT_EQ(t.FirstExpired(kT0 + 30s)->lease_id, "early");
}

TEST(LeaseTable, CheckRefusesUnknownLeasesAndStaleTokens) {
  LeaseTable t;
  t.Add(Lease("l-7-0", "w-1", 0, kT0 + 10s, 7));
  auto ok = t.Check(Ref("l-7-0", 7));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->lease_id, "l-7-0");
  auto stale = t.Check(Ref("l-7-0", 6));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(stale.status().message(), "fencing token 6 is stale (current 7)"))
      << stale.status();
  auto gone = t.Check(Ref("l-1-0", 1));
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(gone.status().message(), "is not active")) << gone.status();
  EXPECT_NE(t.FindHeld(Ref("l-7-0", 7), "w-1"), nullptr);
  EXPECT_EQ(t.FindHeld(Ref("l-7-0", 7), "w-2"), nullptr) << "held by another worker";
  EXPECT_EQ(t.FindHeld(Ref("l-7-0", 8), "w-1"), nullptr);
}

TEST(LeaseTable, AttemptLeasesAndTheRendezvousPort) {
  AttemptRecord a;
  a.trial_id = 3;
  a.attempt = 2;
  a.fencing_token = 9;
  a.lease_ids = {"l-9-0", "l-9-1"};
  a.worker_ids = {"w-1", "w-2"};
  std::vector<LeaseEntry> ls = AttemptLeases(a, 2, kT0 + 5s);
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(ls[1].lease_id, "l-9-1");
  EXPECT_EQ(ls[1].worker_id, "w-2");
  EXPECT_EQ(ls[1].rank, 1);
  EXPECT_EQ(ls[1].token, 9);
  EXPECT_EQ(ls[1].attempt, 2);
  EXPECT_EQ(ls[1].gpus, 2);
  EXPECT_FALSE(ls[1].delivered);
  LeaseTable t;
  for (const LeaseEntry& l : ls) t.Add(l);
  EXPECT_EQ(t.RendezvousPort(ls[1], a), 0) << "rank 0 has not reported";
  t.Find("l-9-0")->master_port = 41234;
  EXPECT_EQ(t.RendezvousPort(ls[1], a), 41234);
  LeaseEntry other = ls[1];
  other.token = 8;  // an older attempt's lease
  EXPECT_EQ(t.RendezvousPort(other, a), 0);
  t.Drop("l-9-0");
  EXPECT_EQ(t.RendezvousPort(ls[1], a), 0);
}

}  // namespace
}  // namespace wrpn::server
