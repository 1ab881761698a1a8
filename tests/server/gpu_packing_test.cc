// Fractional GPUs (issue #19): the scheduler's packing table (shares, memory, sweep affinity,
// starvation of whole-GPU and gang trials, a gang among small trials), then the coordinator on a
// fake clock: placement in leases, `wrpn worker list`'s per-GPU view, the share gauge, and a
// whole-GPU trial that waits its turn behind a stream of 0.25 trials.
#include <filesystem>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/gpu_share.h"
#include "server/coordinator.h"
#include "server/gpu_ledger.h"
#include "server/memory_store.h"
#include "server/scheduler.h"
#include "server/sqlite_store.h"
#include "tests/fakes/fake_clock.h"

namespace wrpn::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int64_t kU = kGpuShareUnits;
constexpr int64_t kGiB = 1LL << 30;

// A trial: id, sweep, share 1/k (k = 0: `gpus` whole GPUs), memory.
QueuedTrial Frac(int64_t id, int64_t sweep, int k, int64_t mem = 0) {
  return {id, 0, sweep, id, 0, 1, kU / k, mem};
}
QueuedTrial Whole(int64_t id, int64_t sweep, int gpus, int nodes = 1) {
  return {id, 0, sweep, id, gpus, nodes, 0, 0};
}

// A worker with `gpus` GPUs of `mem` bytes, none in use; `Hold` places trials as the ledger does.
struct Fleet {
  GpuLedger ledger;
  std::map<std::string, std::vector<GpuRecord>> gpus;
  std::map<std::string, int> used_whole;
  void Add(const std::string& id, int n, int64_t mem = 0) {
    for (int i = 0; i < n; ++i) gpus[id].push_back({i, mem, "gpu"});
  }
  std::vector<WorkerView> Views() const {
    std::vector<WorkerView> out;
    for (const auto& [id, g] : gpus) {
      WorkerView v{id, static_cast<int>(g.size()), 0, 1, true};
      v.gpus = ledger.Views(id, g);
      for (const GpuView& gv : v.gpus) v.free_gpus += gv.free_units == kU ? 1 : 0;
      out.push_back(std::move(v));
    }
    return out;
  }
  // Asks the scheduler for `worker` and records the placement; the trial id or 0.
  int64_t Next(PriorityScheduler& s, const std::string& worker,
               const std::map<int64_t, QueuedTrial>& trials) {
    auto a = s.Next(worker, Views());
    if (!a) return 0;
    const QueuedTrial& t = trials.at(a->trial_id);
    for (size_t n = 0; n < a->worker_ids.size(); ++n) {
      ledger.Place(a->worker_ids[n], a->gpu_slots[n],
                   {t.trial_id, t.sweep_id, t.share_units > 0 ? t.share_units : kU,
                    t.gpu_memory_bytes});
    }
    slots[a->trial_id] = a->gpu_slots[0];
    return a->trial_id;
  }
  std::map<int64_t, std::vector<int>> slots;
};

struct Table {
  PriorityScheduler s;
  Fleet f;
  std::map<int64_t, QueuedTrial> trials;
  void Queue(const QueuedTrial& t) {
    trials[t.trial_id] = t;
    s.Enqueue(t);
  }
  int64_t Next(const std::string& w = "a") { return f.Next(s, w, trials); }
  void Finish(int64_t id, const std::string& w = "a") { f.ledger.Release(w, id); }
};

TEST(GpuPackingTest, FourQuartersFillOneGpuAndAFifthWaits) {
  Table t;
  t.f.Add("a", 1);
  for (int i = 1; i <= 5; ++i) t.Queue(Frac(i, 1, 4));
  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(t.Next(), i);
    EXPECT_THAT(t.f.slots[i], ElementsAre(0));
  }
  EXPECT_EQ(t.Next(), 0) << "the GPU holds 4 x 0.25 = 1.0";
  EXPECT_EQ(t.f.Views()[0].gpus[0].free_units, 0);
  t.Finish(2);
  EXPECT_EQ(t.Next(), 5);
}

TEST(GpuPackingTest, MixedSharesNeverExceedOneGpu) {
  // (share denominator, expected slot) in dispatch order on two GPUs: best fit packs GPU 0 full
  // before opening GPU 1, and a share that fits nowhere waits.
  struct Row { int k; int slot; };
  const std::vector<Row> table = {{2, 0}, {4, 0}, {3, 1}, {8, 0}, {8, 0}, {3, 1}, {2, -1}};
  Table t;
  t.f.Add("a", 2);
  for (size_t i = 0; i < table.size(); ++i) t.Queue(Frac(static_cast<int64_t>(i + 1), 1, table[i].k));
  for (size_t i = 0; i < table.size(); ++i) {
    const int64_t id = t.Next();
    if (table[i].slot < 0) {
      EXPECT_EQ(id, 0) << "row " << i << ": 1/2 fits on neither GPU";
      continue;
    }
    ASSERT_EQ(id, static_cast<int64_t>(i + 1)) << "row " << i;
    EXPECT_THAT(t.f.slots[id], ElementsAre(table[i].slot)) << "row " << i;
  }
  const std::vector<WorkerView> views = t.f.Views();
  for (const GpuView& g : views[0].gpus) EXPECT_GE(g.free_units, 0);
  EXPECT_EQ(t.f.Views()[0].gpus[0].free_units, 0);       // 1/2 + 1/4 + 1/8 + 1/8
  EXPECT_EQ(t.f.Views()[0].gpus[1].free_units, kU / 3);  // 1/3 + 1/3
}

TEST(GpuPackingTest, SixteenSixteenthsFillAGpuExactly) {
  Table t;
  t.f.Add("a", 1);
  for (int i = 1; i <= 17; ++i) t.Queue(Frac(i, 1, 16));
  int placed = 0;
  while (t.Next() != 0) ++placed;
  EXPECT_EQ(placed, 16);
}

TEST(GpuPackingTest, MemoryLimitsPackingAndIsCheckedOnlyWhenKnown) {
  Table t;
  t.f.Add("a", 1, 10 * kGiB);
  for (int i = 1; i <= 3; ++i) t.Queue(Frac(i, 1, 8, 4 * kGiB));
  EXPECT_EQ(t.Next(), 1);
  EXPECT_EQ(t.Next(), 2);
  EXPECT_EQ(t.Next(), 0) << "3 x 4 GiB do not fit in 10 GiB although 3/8 of the share does";
  Table unknown;
  unknown.f.Add("a", 1, 0);
  for (int i = 1; i <= 3; ++i) unknown.Queue(Frac(i, 1, 8, 4 * kGiB));
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(unknown.Next(), i) << "memory unknown: share only";
  PriorityScheduler s;
  EXPECT_EQ(s.Unplaceable(Frac(9, 1, 4, 16 * kGiB), t.f.Views()),
            "no worker has a GPU with 16 GiB");
}

TEST(GpuPackingTest, BestFitThenSameSweepPreference) {
  Table t;
  t.f.Add("a", 3);
  t.Queue(Frac(1, 1, 2));  // sweep 1 -> GPU 0
  t.Queue(Frac(2, 2, 4));  // sweep 2: best fit is GPU 0 too (0.25 left)
  ASSERT_EQ(t.Next(), 1);
  ASSERT_EQ(t.Next(), 2);
  EXPECT_THAT(t.f.slots[2], ElementsAre(0));
  t.Queue(Frac(3, 3, 2));  // sweep 3 opens GPU 1
  ASSERT_EQ(t.Next(), 3);
  EXPECT_THAT(t.f.slots[3], ElementsAre(1));
  // GPU 0 has 0.25 free (sweeps 1, 2), GPU 1 0.5 free (sweep 3): a 0.25 trial of sweep 3 goes
  // to GPU 1 (same sweep) although GPU 0 would be the tighter fit.
  t.Queue(Frac(4, 3, 4));
  ASSERT_EQ(t.Next(), 4);
  EXPECT_THAT(t.f.slots[4], ElementsAre(1));
  // A 0.25 trial of sweep 1 goes back to GPU 0.
  t.Queue(Frac(5, 1, 4));
  ASSERT_EQ(t.Next(), 5);
  EXPECT_THAT(t.f.slots[5], ElementsAre(0));
}

TEST(GpuPackingTest, WholeGpuTrialsTakeOnlyEmptyGpus) {
  Table t;
  t.f.Add("a", 2);
  t.Queue(Frac(1, 1, 4));
  t.Queue(Whole(2, 1, 1));
  t.Queue(Whole(3, 1, 1));
  ASSERT_EQ(t.Next(), 1);
  EXPECT_EQ(t.Next(), 2);
  EXPECT_THAT(t.f.slots[2], ElementsAre(1)) << "GPU 0 holds a 0.25 trial";
  EXPECT_EQ(t.Next(), 0);
  t.Queue(Frac(4, 1, 4));
  EXPECT_EQ(t.Next(), 0) << "trial 4 is behind whole-GPU trial 3, which reserves GPU 0";
}

TEST(GpuPackingTest, AStreamOfSmallTrialsDoesNotStarveAWholeGpuTrial) {
  // One GPU, 0.25 trials arriving all the time; a whole-GPU trial queued after the first four.
  // Rule: it reserves the GPU closest to idle, so later 0.25 trials wait until it has run.
  Table t;
  t.f.Add("a", 1);
  int64_t next = 1;
  for (; next <= 4; ++next) t.Queue(Frac(next, 1, 4));
  t.Queue(Whole(100, 2, 1));
  for (int64_t i = 1; i <= 4; ++i) ASSERT_EQ(t.Next(), i);
  for (int round = 0; round < 4; ++round) {  // a new small trial per finished one
    t.Queue(Frac(next++, 3, 4));
    t.Finish(round + 1);
    EXPECT_EQ(t.Next(), round < 3 ? 0 : 100)
        << "round " << round << ": no small trial backfills the reserved GPU";
  }
  EXPECT_THAT(t.f.slots[100], ElementsAre(0));
  EXPECT_EQ(t.Next(), 0);
  t.Finish(100);
  EXPECT_EQ(t.Next(), 5) << "the small trials run again once it is done";
}

TEST(GpuPackingTest, SmallTrialsAheadInOrderStillGoFirst) {
  Table t;
  t.f.Add("a", 1);
  t.Queue(Whole(10, 2, 1));
  t.Queue({1, 5, 1, 0, 0, 1, kU / 4, 0});  // higher priority
  EXPECT_EQ(t.Next(), 1);
  EXPECT_EQ(t.Next(), 0) << "no more small trials ahead of it; the whole one waits for the GPU";
  t.Finish(1);
  EXPECT_EQ(t.Next(), 10);
}

TEST(GpuPackingTest, AReservationLeavesTheOtherGpusToSmallTrials) {
  Table t;
  t.f.Add("a", 2);
  t.Queue(Frac(1, 1, 2));
  t.Queue(Frac(2, 1, 4));
  ASSERT_EQ(t.Next(), 1);  // GPU 0: 0.5
  ASSERT_EQ(t.Next(), 2);  // GPU 0: 0.75
  t.Queue(Whole(10, 2, 2));  // needs both GPUs
  t.Queue(Frac(3, 3, 8));
  t.Queue(Frac(4, 3, 8));
  // Trial 10 reserves GPUs 1 (idle) and 0; nothing behind it is placed.
  EXPECT_EQ(t.Next(), 0);
  t.Finish(1);
  t.Finish(2);
  EXPECT_EQ(t.Next(), 10);
  EXPECT_THAT(t.f.slots[10], ElementsAre(0, 1));
}

TEST(GpuPackingTest, AGangAmongSmallTrialsGetsItsNodes) {
  Table t;
  t.f.Add("a", 1);
  t.f.Add("b", 1);
  t.Queue(Frac(1, 1, 4));
  t.Queue(Whole(50, 2, 1, 2));  // 1 GPU x 2 nodes
  for (int i = 2; i <= 4; ++i) t.Queue(Frac(i, 3, 4));
  ASSERT_EQ(t.Next("a"), 1);  // a: 0.25 in use
  // b asks: the gang needs a and b empty; it does not fit, so it reserves b's GPU against the
  // small trials behind it.
  EXPECT_EQ(t.Next("b"), 0);
  EXPECT_EQ(t.Next("a"), 0) << "a's GPU is reserved for the gang too";
  t.Finish(1, "a");
  EXPECT_EQ(t.Next("b"), 50);
  EXPECT_EQ(t.Next("a"), 0);
  t.Finish(50, "a");
  t.Finish(50, "b");
  EXPECT_EQ(t.Next("a"), 2);
}

TEST(GpuPackingTest, AGangThatCanNeverFormReservesNothing) {
  Table t;
  t.f.Add("a", 1);
  t.Queue(Whole(50, 2, 1, 3));  // 3 nodes, only one worker
  t.Queue(Frac(1, 3, 4));
  EXPECT_EQ(t.Next(), 1);
}

TEST(GpuPackingTest, UnplaceableSaysWhyForFractions) {
  PriorityScheduler s;
  EXPECT_EQ(s.Unplaceable(Frac(1, 1, 4), {WorkerView{"cpu", 0, 0, 4, true}}),
            "no worker has a GPU");
  Fleet f;
  f.Add("a", 1, 8 * kGiB);
  EXPECT_EQ(s.Unplaceable(Frac(1, 1, 4, 4 * kGiB), f.Views()), "");
  QueuedTrial big = Whole(2, 1, 1);
  big.gpu_memory_bytes = 16 * kGiB;
  EXPECT_THAT(s.Unplaceable(big, f.Views()), HasSubstr("no worker has 1 GPU with 16 GiB"));
}

// ---- the coordinator, fake clock ----

class GpuShareCoordinatorTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    CoordinatorOptions opts;
    opts.lease_ttl = 1h;  // the fake clock moves in 10 s steps without heartbeats
    c_.reset();
    registry_ = std::make_unique<MetricsRegistry>();
    auto c = Coordinator::Create(store_.get(), &clock_, registry_.get(), opts);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = *std::move(c);
  }
  int64_t Submit(const std::string& name, const std::string& resources, int seeds) {
    pb::SubmitSweepRequest req;
    std::string seed_list;
    for (int i = 0; i < seeds; ++i) absl::StrAppend(&seed_list, i ? ", " : "", i);
    req.set_spec_text(absl::StrCat("name: ", name, "\naxes: {network: lenet5, width: 1, precision: "
                                   "[\"4/4\"], seed: [", seed_list, "]}\nresources: ", resources, "\n"));
    auto r = c_->SubmitSweep(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->sweep_id() : 0;
  }
  std::string Register(int gpus, int64_t mem = 0) {
    pb::RegisterWorkerRequest req;
    req.set_name("gpu-box");
    for (int i = 0; i < gpus; ++i) {
      pb::Gpu* g = req.add_gpus();
      g->set_index(i);
      g->set_memory_bytes(mem);
    }
    auto r = c_->RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->worker_id();
  }
  std::vector<pb::Lease> Acquire(const std::string& w, int free_gpus) {
    pb::AcquireTrialRequest req;
    req.set_worker_id(w);
    req.set_max_trials(16);
    req.set_free_gpus(free_gpus);
    auto r = c_->AcquireTrial(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::vector<pb::Lease>(r->leases().begin(), r->leases().end())
                  : std::vector<pb::Lease>{};
  }
  void Complete(const pb::Lease& l) {
    pb::CompleteTrialRequest req;
    req.mutable_lease()->set_lease_id(l.lease_id());
    req.mutable_lease()->set_fencing_token(l.fencing_token());
    req.mutable_result()->set_top1(80);
    ASSERT_TRUE(c_->CompleteTrial(req).ok());
  }
  pb::Worker Worker() { return c_->ListWorkers({})->workers(0); }

  FakeClock clock_;
  std::unique_ptr<Store> store_ = std::make_unique<MemoryStore>();
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(GpuShareCoordinatorTest, LeasesCarryShareSlotAndMemoryAndWorkerListShowsThem) {
  const std::string w = Register(1, 80 * kGiB);
  const int64_t sweep = Submit("small", "{gpus_per_node: 0.25, gpu_memory_gb: 2}", 5);
  auto leases = Acquire(w, 1);
  ASSERT_EQ(leases.size(), 4u) << "4 x 0.25 on the one GPU; the fifth waits";
  for (const auto& l : leases) {
    EXPECT_DOUBLE_EQ(l.gpu_share(), 0.25);
    EXPECT_EQ(l.gpu_memory_bytes(), 2 * kGiB);
    EXPECT_THAT(l.gpu_slots(), ElementsAre(0));
    EXPECT_EQ(l.gpus_per_node(), 0);
  }
  pb::Worker wk = Worker();
  ASSERT_EQ(wk.gpus_size(), 1);
  EXPECT_DOUBLE_EQ(wk.gpus(0).share_used(), 1.0);
  EXPECT_EQ(wk.gpus(0).trials_size(), 4);
  EXPECT_EQ(wk.gpus(0).memory_reserved_bytes(), 8 * kGiB);
  EXPECT_EQ(wk.free_gpus(), 0) << "a GPU holding fractions is not free";
  const std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("wrpn_worker_gpu_share{worker=\"gpu-box\",gpu=\"0\"} 1"));
  auto trials = c_->ListTrials([&] {
    pb::ListTrialsRequest r;
    r.set_sweep_id(sweep);
    return r;
  }());
  ASSERT_TRUE(trials.ok());
  EXPECT_DOUBLE_EQ(trials->trials(0).gpu_share(), 0.25);
  EXPECT_EQ(trials->trials(4).pending_reason(), "waiting for a free worker");
  Complete(leases[0]);
  EXPECT_DOUBLE_EQ(Worker().gpus(0).share_used(), 0.75);
  EXPECT_THAT(registry_->Render(), HasSubstr("gpu=\"0\"} 0.75"));
  EXPECT_EQ(Acquire(w, 0).size(), 1u);
}

TEST_F(GpuShareCoordinatorTest, AWholeGpuTrialWaitsItsTurnBehindAStreamOfQuarterTrials) {
  const std::string w = Register(1);
  Submit("first", "{gpus_per_node: 0.25}", 4);
  Submit("whole", "{gpus_per_node: 1}", 1);
  Submit("stream", "{gpus_per_node: 0.25}", 12);
  std::vector<pb::Lease> running = Acquire(w, 1);
  ASSERT_EQ(running.size(), 4u);
  // Every 10 s of fake time one 0.25 trial finishes; the worker asks again each time.
  std::optional<int> whole_started_at;
  for (int tick = 1; tick <= 8 && !whole_started_at; ++tick) {
    clock_.Advance(10s);
    Complete(running.front());
    running.erase(running.begin());
    for (const auto& l : Acquire(w, running.empty() ? 1 : 0)) {
      if (l.gpu_share() == 0) whole_started_at = tick;
      running.push_back(l);
    }
    if (!whole_started_at) {
      EXPECT_EQ(running.size(), 4u - tick) << "tick " << tick << ": no quarter backfills";
    }
  }
  ASSERT_TRUE(whole_started_at) << "the whole-GPU trial never started";
  EXPECT_EQ(*whole_started_at, 4) << "it starts as soon as the first four have drained the GPU";
  ASSERT_EQ(running.size(), 1u);
  EXPECT_THAT(running[0].gpu_slots(), ElementsAre(0));
  EXPECT_EQ(running[0].gpus_per_node(), 1);
  EXPECT_TRUE(Acquire(w, 0).empty());
  Complete(running[0]);
  EXPECT_EQ(Acquire(w, 1).size(), 4u) << "then the stream packs the GPU again";
}

TEST_F(GpuShareCoordinatorTest, PlacementSurvivesARestart) {
  const std::string db = (std::filesystem::temp_directory_path() /
                          absl::StrCat("wrpn-gpu-share-", ::getpid(), ".db")).string();
  std::filesystem::remove(db);
  auto sq = SqliteStore::Open(db);
  ASSERT_TRUE(sq.ok()) << sq.status();
  store_ = *std::move(sq);
  Open();
  const std::string w = Register(2);
  Submit("small", "{gpus_per_node: 0.5, gpu_memory_gb: 1.5}", 3);
  auto leases = Acquire(w, 2);
  ASSERT_EQ(leases.size(), 3u);
  Open();  // a coordinator restart: leases come back from the store with their slots
  pb::Worker wk = Worker();
  EXPECT_DOUBLE_EQ(wk.gpus(0).share_used(), 1.0);
  EXPECT_DOUBLE_EQ(wk.gpus(1).share_used(), 0.5);
  EXPECT_EQ(wk.gpus(1).memory_reserved_bytes(), static_cast<int64_t>(1.5 * kGiB));
  c_.reset();
  store_.reset();
  std::filesystem::remove(db);
}

}  // namespace
}  // namespace wrpn::server
