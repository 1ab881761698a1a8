// One suite, run against both Store implementations.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "server/memory_store.h"
#include "server/sqlite_store.h"

namespace wrpn::server {
namespace {

std::string TempDb(const std::string& stem) {
  static int n = 0;
  auto path = std::filesystem::path(testing::TempDir()) /
              (stem + "-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".db");
  std::filesystem::remove(path);
  return path.string();
}

struct MemoryFactory {
  static std::unique_ptr<Store> Make() { return std::make_unique<MemoryStore>(); }
};
struct SqliteFactory {
  static std::unique_ptr<Store> Make() {
    auto s = SqliteStore::Open(TempDb("store"));
    EXPECT_TRUE(s.ok()) << s.status();
    return *std::move(s);
  }
};

SweepRecord Sweep(int64_t id) {
  SweepRecord s;
  s.id = id;
  s.name = "s" + std::to_string(id);
  s.spec_json = "{\"name\":\"x\"}";
  s.priority = 2;
  s.max_attempts = 3;
  s.created_ms = 1000 + id;
  s.trial_count = 2;
  return s;
}

TrialRecord Trial(int64_t id, int64_t sweep) {
  TrialRecord t;
  t.id = id;
  t.sweep_id = sweep;
  t.index = id;
  t.network = "lenet5";
  t.width = 2;
  t.wbits = 4;
  t.abits = 2;
  t.seed = 7;
  t.cost_uniform = 0.25;
  t.fma_ratio = 3.9;
  t.cost_first_last_fp32 = 0.3;
  t.queued_ms = 5;
  t.config_json = "{\"network\":\"lenet5\"}";
  t.gpus_per_node = 1;
  t.nodes = 2;
  return t;
}

template <typename F>
class StoreTest : public testing::Test {
 protected:
  std::unique_ptr<Store> store_ = F::Make();
};
using Factories = testing::Types<MemoryFactory, SqliteFactory>;
TYPED_TEST_SUITE(StoreTest, Factories);

TYPED_TEST(StoreTest, EmptyStoreLoadsNothing) {
  auto snap = this->store_->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->sweeps.empty());
  EXPECT_TRUE(snap->trials.empty());
  EXPECT_EQ(snap->max_event_seq, 0);
}

TYPED_TEST(StoreTest, RoundTripsEveryRecord) {
  Mutation m;
  m.sweeps.push_back(Sweep(1));
  m.trials.push_back(Trial(1, 1));
  TrialRecord t2 = Trial(2, 1);
  t2.state = TrialState::kSucceeded;
  t2.best_top1 = 91.5;
  t2.final_top1 = 90.25;
  t2.final_top5 = 99.0;
  t2.images_per_sec = 1234.5;
  t2.error = "none";
  m.trials.push_back(t2);
  AttemptRecord a;
  a.trial_id = 2;
  a.attempt = 1;
  a.fencing_token = 17;
  a.outcome = AttemptOutcome::kSucceeded;
  a.lease_ids = {"l-17-0", "l-17-1"};
  a.worker_ids = {"w-1", "w-2"};
  a.started_ms = 10;
  a.ended_ms = 20;
  a.resume_checkpoint = "/ckpt/1.pt";
  a.resume_epoch = 3;
  m.attempts.push_back(a);
  AttemptRecord failed = a;  // the failure kind has its own column
  failed.attempt = 2;
  failed.fencing_token = 18;
  failed.outcome = AttemptOutcome::kFailed;
  failed.reason = "rendezvous: rank 1 of world size 2 never arrived";
  failed.failure_kind = FailureKind::kRendezvous;
  m.attempts.push_back(failed);
  WorkerRecord w;
  w.id = "w-1";
  w.name = "gpu-box";
  w.address = "10.0.0.1";
  w.gpus = {{0, 80LL << 30, "H100"}, {1, 80LL << 30, "H100"}};
  w.cpus = 32;
  w.labels = {{"zone", "a"}};
  w.registered_ms = 3;
  m.workers.push_back(w);
  m.checkpoints.push_back({2, 1, 3, "/ckpt/1.pt", 15});
  m.events.push_back({1, 11, 1, 2, 3, 1, "done"});
  TrialRecord pruned = Trial(3, 1);
  pruned.state = TrialState::kPruned;
  pruned.pruned_top1 = 87.25;
  pruned.pruned_epoch = 2;
  m.trials.push_back(pruned);
  const RungDecisionRecord rung0{1, 0, 2, 40, R"({"margin":0.5})", "[3]"};
  const RungDecisionRecord rung1{1, 1, 5, 50, R"({"margin":0.75})", "[]"};
  m.rung_decisions = {rung1, rung0};
  ASSERT_TRUE(this->store_->Apply(m).ok());

  auto snap = this->store_->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->sweeps.size(), 1u);
  EXPECT_EQ(snap->sweeps[0], Sweep(1));
  ASSERT_EQ(snap->trials.size(), 3u);
  EXPECT_EQ(snap->trials[0], Trial(1, 1));
  EXPECT_EQ(snap->trials[1], t2);
  EXPECT_EQ(snap->trials[2], pruned);
  EXPECT_EQ(snap->rung_decisions, (std::vector<RungDecisionRecord>{rung0, rung1}));
  // A decision is an upsert by (sweep, rung): late reports extend it.
  Mutation extend;
  RungDecisionRecord extended = rung0;
  extended.decision_json = R"({"margin":0.5,"late":true})";
  extend.rung_decisions.push_back(extended);
  ASSERT_TRUE(this->store_->Apply(extend).ok());
  EXPECT_EQ(this->store_->Load()->rung_decisions,
            (std::vector<RungDecisionRecord>{extended, rung1}));
  ASSERT_EQ(snap->attempts.size(), 2u);
  EXPECT_EQ(snap->attempts[0], a);
  EXPECT_EQ(snap->attempts[1], failed);
  ASSERT_EQ(snap->workers.size(), 1u);
  EXPECT_EQ(snap->workers[0], w);
  ASSERT_EQ(snap->checkpoints.size(), 1u);
  EXPECT_EQ(snap->checkpoints[0].path, "/ckpt/1.pt");
  EXPECT_EQ(snap->max_event_seq, 1);
}

TYPED_TEST(StoreTest, UpsertsReplaceState) {
  Mutation m;
  m.sweeps.push_back(Sweep(1));
  m.trials.push_back(Trial(1, 1));
  ASSERT_TRUE(this->store_->Apply(m).ok());
  Mutation u;
  TrialRecord t = Trial(1, 1);
  t.state = TrialState::kRunning;
  t.attempts = 2;
  t.checkpoint_path = "/c";
  u.trials.push_back(t);
  SweepRecord s = Sweep(1);
  s.cancelled = true;
  u.sweeps.push_back(s);
  ASSERT_TRUE(this->store_->Apply(u).ok());
  auto snap = this->store_->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->trials.size(), 1u);
  EXPECT_EQ(snap->trials[0], t);
  EXPECT_TRUE(snap->sweeps[0].cancelled);
}

TYPED_TEST(StoreTest, MissingParentWritesNothing) {
  Mutation m;
  m.sweeps.push_back(Sweep(1));
  m.trials.push_back(Trial(1, 1));
  m.trials.push_back(Trial(2, 99));  // no sweep 99
  absl::Status st = this->store_->Apply(m);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  auto snap = this->store_->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->sweeps.empty());
  EXPECT_TRUE(snap->trials.empty());

  Mutation metric_only;
  metric_only.metrics.push_back({42, 1, "top1", 1, 50, 1});
  EXPECT_EQ(this->store_->Apply(metric_only).code(), absl::StatusCode::kFailedPrecondition);

  Mutation decision_only;
  decision_only.rung_decisions.push_back({42, 0, 2, 1, "{}", "[]"});
  EXPECT_EQ(this->store_->Apply(decision_only).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(this->store_->Load()->rung_decisions.empty());
}


TYPED_TEST(StoreTest, MetricsAppendAndFilterByName) {
  Mutation m;
  m.sweeps.push_back(Sweep(1));
  m.trials.push_back(Trial(1, 1));
  m.trials.push_back(Trial(2, 1));
  ASSERT_TRUE(this->store_->Apply(m).ok());
  Mutation p;
  for (int e = 1; e <= 3; ++e) {
    p.metrics.push_back({1, 1, "top1", e, 10.0 * e, 100 + e});
    p.metrics.push_back({1, 1, "train_loss", e, 1.0 / e, 100 + e});
    p.metrics.push_back({2, 1, "top1", e, 1.0, 100 + e});
  }
  ASSERT_TRUE(this->store_->Apply(p).ok());
  auto all = this->store_->Metrics(1, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);
  auto top1 = this->store_->Metrics(1, "top1");
  ASSERT_TRUE(top1.ok());
  ASSERT_EQ(top1->size(), 3u);
  EXPECT_EQ((*top1)[2], (MetricRecord{1, 1, "top1", 3, 30.0, 103}));
  auto snap = this->store_->Load();
  EXPECT_EQ(snap->metric_count, 9);
}

TYPED_TEST(StoreTest, EventsBySweepAfterSeqAndPrune) {
  Mutation m;
  m.sweeps.push_back(Sweep(1));
  m.sweeps.push_back(Sweep(2));
  for (int i = 1; i <= 6; ++i) m.events.push_back({i, i * 100, i % 2 + 1, 0, 0, 0, "e"});
  ASSERT_TRUE(this->store_->Apply(m).ok());
  auto ev = this->store_->Events(2, 1, 10);  // sweep 2 = odd seqs
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[0].seq, 3);
  EXPECT_EQ((*ev)[1].seq, 5);
  auto limited = this->store_->Events(0, 0, 4);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 4u);
  auto pruned = this->store_->PruneEvents(350);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 3);
  EXPECT_EQ(this->store_->Events(0, 0, 100)->size(), 3u);
}

TYPED_TEST(StoreTest, PaperTablesAreVersioned) {
  auto empty = this->store_->GetPaperTables();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->version.empty());
  PaperTables p;
  p.version = "v1";
  p.json = "{}";
  p.values.push_back({"table1", "alexnet", 1, 32, 32, 57.2, std::nullopt});
  p.values.push_back({"table3", "alexnet", 2, 8, 8, std::nullopt, 1.0});
  ASSERT_TRUE(this->store_->PutPaperTables(p).ok());
  auto got = this->store_->GetPaperTables();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, "v1");
  EXPECT_EQ(got->values, p.values);
  PaperTables q = p;
  q.version = "v2";
  q.values.pop_back();
  ASSERT_TRUE(this->store_->PutPaperTables(q).ok());
  EXPECT_EQ(this->store_->GetPaperTables()->values.size(), 1u);
}

TEST(SqliteStoreTest, ReopenKeepsDataAndSchemaVersion) {
  const std::string path = TempDb("reopen");
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->schema_version(), 6);
    Mutation m;
    m.sweeps.push_back(Sweep(5));
    m.trials.push_back(Trial(9, 5));
    m.metrics.push_back({9, 1, "top1", 1, 12.5, 3});
    ASSERT_TRUE((*s)->Apply(m).ok());
  }
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->trials.size(), 1u);
  EXPECT_EQ(snap->trials[0], Trial(9, 5));
  EXPECT_EQ((*s)->Metrics(9, "top1")->size(), 1u);
}

// The metrics table as schema 1 and 2 had it (before migration 3), for downgrade tests.
constexpr char kMetricsBeforeMigrationThree[] = R"sql(
      DROP TABLE metrics;
      CREATE TABLE metrics(
        id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials(id),
        attempt INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
        wall_ms INTEGER NOT NULL);
      CREATE INDEX metrics_trial ON metrics(trial_id, name);)sql";

// Undo migrations 6 (Pareto-pruned sweeps), 5 (the trial's scheme) and 4 (fractional GPUs), for
// tests that go back to an older schema (the latest first: a schema-3 database has none).
constexpr char kDropMigrationSix[] = R"sql(
      DROP TABLE rung_decisions;
      ALTER TABLE trials DROP COLUMN pruned_top1;
      ALTER TABLE trials DROP COLUMN pruned_epoch;)sql";
constexpr char kDropMigrationFive[] = R"sql(
      ALTER TABLE trials DROP COLUMN scheme;)sql";
constexpr char kDropMigrationFour[] = R"sql(
      ALTER TABLE attempts DROP COLUMN gpu_slots;
      ALTER TABLE trials DROP COLUMN gpu_share_units;
      ALTER TABLE trials DROP COLUMN gpu_memory_bytes;)sql";

// Runs `sql` on the database at `path` outside the store (to write an older schema's rows).
void ExecOutsideTheStore(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
}

// Migration 5 adds the trial's scheme: trials stored before it were wrpn's; new ones keep theirs.
TEST(SqliteStoreTest, MigrationFiveGivesEarlierTrialsTheWrpnScheme) {
  const std::string path = TempDb("migrate5");
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status();
    Mutation m;
    m.sweeps.push_back(Sweep(5));
    TrialRecord lsq = Trial(10, 5);
    lsq.index = 1;
    lsq.scheme = "lsq";
    m.trials = {Trial(9, 5), lsq};
    ASSERT_TRUE((*s)->Apply(m).ok());
  }
  ExecOutsideTheStore(path, std::string(kDropMigrationSix) + R"sql(
      ALTER TABLE trials DROP COLUMN scheme;
      DELETE FROM schema_migrations WHERE version >= 5;)sql");  // back to schema 4
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->schema_version(), 6);
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->trials.size(), 2u);
  EXPECT_EQ(snap->trials[0].scheme, "wrpn");
  EXPECT_EQ(snap->trials[1].scheme, "wrpn");  // its column was dropped with schema 4
}

// A database at the current schema holding sweep 5 and its trial 9, closed again: where the
// migration tests start before they rewind the schema by hand.
void StoreSweep5Trial9(const std::string& path) {
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  Mutation m;
  m.sweeps.push_back(Sweep(5));
  m.trials.push_back(Trial(9, 5));
  ASSERT_TRUE((*s)->Apply(m).ok());
}

// Migration 6 (Pareto-pruned sweeps): trials stored before it were never pruned; no decisions.
TEST(SqliteStoreTest, MigrationSixReadsOldTrialsAsUnpruned) {
  const std::string path = TempDb("migrate6");
  StoreSweep5Trial9(path);
  ExecOutsideTheStore(path, std::string(kDropMigrationSix) + R"sql(
      DELETE FROM schema_migrations WHERE version >= 6;)sql");  // back to schema 5
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->schema_version(), 6);
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->trials.size(), 1u);
  EXPECT_EQ(snap->trials[0], Trial(9, 5));
  EXPECT_FALSE(snap->trials[0].pruned_top1.has_value());
  EXPECT_TRUE(snap->rung_decisions.empty());
}

TEST(SqliteStoreTest, TrialsKeepTheirScheme) {
  auto s = SqliteStore::Open(TempDb("scheme"));
  ASSERT_TRUE(s.ok()) << s.status();
  Mutation m;
  m.sweeps.push_back(Sweep(5));
  TrialRecord t = Trial(9, 5);
  t.scheme = "pact";
  m.trials = {t};
  ASSERT_TRUE((*s)->Apply(m).ok());
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->trials.size(), 1u);
  EXPECT_EQ(snap->trials[0], t);
}

// Migration 2 gives attempts that failed under schema 1 the kind their reason starts with.
TEST(SqliteStoreTest, MigrationTwoBackfillsTheFailureKindFromTheReason) {
  const std::string path = TempDb("migrate");
  StoreSweep5Trial9(path);
  {  // back to schema 1, with attempts written by a coordinator of that schema
    const std::string sql = std::string(kDropMigrationSix) + kDropMigrationFive + kDropMigrationFour + kMetricsBeforeMigrationThree + R"sql(
      ALTER TABLE attempts DROP COLUMN failure_kind;
      DELETE FROM schema_migrations WHERE version >= 2;
      INSERT INTO attempts VALUES(9, 1, 1, 3, '[]', '[]', 1, 2, 'rendezvous: rank 1 never arrived', '', 0);
      INSERT INTO attempts VALUES(9, 2, 2, 3, '[]', '[]', 3, 4, 'interrupted: worker w shutting down', '', 0);
      INSERT INTO attempts VALUES(9, 3, 3, 3, '[]', '[]', 5, 6, 'trial failed (no reason given)', '', 0);
      INSERT INTO attempts VALUES(9, 4, 4, 4, '[]', '[]', 7, 8, 'lease expired', '', 0);)sql";
    ExecOutsideTheStore(path, sql);
  }
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->schema_version(), 6);
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->attempts.size(), 4u);
  EXPECT_EQ(snap->attempts[0].failure_kind, FailureKind::kRendezvous);
  EXPECT_EQ(snap->attempts[1].failure_kind, FailureKind::kInterrupted);
  EXPECT_EQ(snap->attempts[2].failure_kind, FailureKind::kInternal);
  EXPECT_EQ(snap->attempts[3].failure_kind, std::nullopt) << "only failed attempts have a kind";
}

// Migration 3 moves the metric points of schema 2 (rowid table + index) into the table clustered
// by trial, keeping every point and its order; points stored afterwards come after them.
TEST(SqliteStoreTest, MigrationThreeKeepsEveryPointInOrder) {
  const std::string path = TempDb("migrate3");
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status();
    Mutation m;
    m.sweeps.push_back(Sweep(5));
    m.trials.push_back(Trial(9, 5));
    m.trials.push_back(Trial(10, 5));
    ASSERT_TRUE((*s)->Apply(m).ok());
  }
  {  // back to schema 2, with points written by a coordinator of that schema
    const std::string sql = std::string(kDropMigrationSix) + kDropMigrationFive + kDropMigrationFour + kMetricsBeforeMigrationThree + R"sql(
      DELETE FROM schema_migrations WHERE version >= 3;
      INSERT INTO metrics VALUES(1, 9, 1, 'top1', 1, 10.0, 100);
      INSERT INTO metrics VALUES(2, 10, 1, 'top1', 1, 20.0, 101);
      INSERT INTO metrics VALUES(3, 9, 1, 'train_loss', 1, 2.5, 102);
      INSERT INTO metrics VALUES(7, 9, 2, 'top1', 2, 30.0, 103);)sql";
    ExecOutsideTheStore(path, sql);
  }
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->schema_version(), 6);
  Mutation m;
  m.metrics.push_back({9, 2, "top1", 3, 40.0, 104});
  ASSERT_TRUE((*s)->Apply(m).ok());
  auto all = (*s)->Metrics(9, "");
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<double> values;
  for (const auto& p : *all) values.push_back(p.value);
  EXPECT_EQ(values, (std::vector<double>{10.0, 2.5, 30.0, 40.0}));
  auto top1 = (*s)->Metrics(9, "top1");
  ASSERT_TRUE(top1.ok());
  ASSERT_EQ(top1->size(), 3u);
  EXPECT_EQ((*top1)[2].step, 3);
  EXPECT_EQ((*top1)[2].attempt, 2);
  EXPECT_EQ((*s)->Metrics(10, "top1")->size(), 1u);
  EXPECT_EQ((*s)->Load()->metric_count, 5);
}

// A process SIGKILLed inside Apply (common/crash_point.h) loses exactly the uncommitted
// mutation: killed before COMMIT, the database holds none of it; killed right after, all of it.
// CrashPoint reads WRPN_CRASH_AT once per process, so the kill happens in a death-test child
// that re-executes the binary and re-runs the test up to EXPECT_EXIT with its own temp paths;
// WRPN_TEST_CRASH_DB (set without overwriting) hands it the parent's database.
void ExpectSigkillAt(const std::string& stage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string path = TempDb("crash-" + stage);
  {
    auto s = SqliteStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status();
    Mutation m;
    m.sweeps.push_back(Sweep(5));
    m.trials.push_back(Trial(9, 5));
    m.metrics.push_back({9, 1, "top1", 1, 12.5, 3});
    ASSERT_TRUE((*s)->Apply(m).ok());
  }
  Mutation m;
  m.op = "metrics";
  TrialRecord t = Trial(9, 5);
  t.best_top1 = 40;
  m.trials.push_back(t);
  for (int step = 2; step <= 50; ++step) m.metrics.push_back({9, 1, "top1", step, 40, 3 + step});
  setenv("WRPN_CRASH_AT", ("metrics." + stage).c_str(), 1);
  setenv("WRPN_TEST_CRASH_DB", path.c_str(), /*overwrite=*/0);
  EXPECT_EXIT(
      {
        auto s = SqliteStore::Open(std::getenv("WRPN_TEST_CRASH_DB"));
        if (!s.ok()) std::exit(3);
        (void)(*s)->Apply(m);
        std::exit(0);
      },
      testing::KilledBySignal(SIGKILL), "crash point 'metrics." + stage + "' reached");
  unsetenv("WRPN_CRASH_AT");
  unsetenv("WRPN_TEST_CRASH_DB");
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->trials.size(), 1u);
  const bool committed = stage == "committed";
  EXPECT_EQ(snap->trials[0].best_top1, committed ? std::optional<double>(40) : std::nullopt);
  EXPECT_EQ((*s)->Metrics(9, "top1")->size(), committed ? 50u : 1u);
  // Writable after the crash (no stale lock or journal left behind).
  Mutation more;
  more.metrics.push_back({9, 1, "top5", 1, 50, 4});
  EXPECT_TRUE((*s)->Apply(more).ok());
}

TEST(SqliteStoreTest, SigkillBeforeCommitKeepsNoneOfTheMutation) { ExpectSigkillAt("uncommitted"); }
TEST(SqliteStoreTest, SigkillAfterCommitKeepsAllOfIt) { ExpectSigkillAt("committed"); }

TEST(SqliteStoreTest, UnopenablePathIsAnError) {
  auto s = SqliteStore::Open("/nonexistent-dir/x/y.db");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("/nonexistent-dir/x/y.db"), std::string::npos);
}

// Migration 4 (fractional GPUs): trials and attempts of schema 3 read back as whole-GPU ones.
TEST(SqliteStoreTest, MigrationFourReadsOldTrialsAsWholeGpuTrials) {
  const std::string path = TempDb("migrate4");
  StoreSweep5Trial9(path);
  ExecOutsideTheStore(path, std::string(kDropMigrationSix) + kDropMigrationFive + kDropMigrationFour + R"sql(
      DELETE FROM schema_migrations WHERE version >= 4;
      INSERT INTO attempts VALUES(9, 1, 1, 1, '["l-1-0"]', '["w-1"]', 1, 0, '', '', 0, 0);)sql");
  auto s = SqliteStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->schema_version(), 6);
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->trials.size(), 1u);
  EXPECT_EQ(snap->trials[0].gpu_share_units, 0);
  EXPECT_EQ(snap->trials[0].gpu_memory_bytes, 0);
  ASSERT_EQ(snap->attempts.size(), 1u);
  EXPECT_TRUE(snap->attempts[0].gpu_slots.empty());
}

}  // namespace
}  // namespace wrpn::server
