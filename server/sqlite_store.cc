#include "server/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

using nlohmann::json;

// Numbered migrations; never edit one that shipped, append a new one.
const std::vector<const char*>& Migrations() {
  static const std::vector<const char*> m = {
      // 1: initial schema
      R"sql(
CREATE TABLE sweeps(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL,
  priority INTEGER NOT NULL, max_attempts INTEGER NOT NULL, cancelled INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, trial_count INTEGER NOT NULL);
CREATE TABLE trials(
  id INTEGER PRIMARY KEY, sweep_id INTEGER NOT NULL REFERENCES sweeps(id), idx INTEGER NOT NULL,
  network TEXT NOT NULL, width REAL NOT NULL, wbits INTEGER NOT NULL, abits INTEGER NOT NULL,
  seed INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL,
  retry_base INTEGER NOT NULL, error TEXT NOT NULL, checkpoint_path TEXT NOT NULL,
  checkpoint_epoch INTEGER NOT NULL, best_top1 REAL, final_top1 REAL, final_top5 REAL,
  images_per_sec REAL, fma_ratio REAL NOT NULL, cost_uniform REAL NOT NULL,
  cost_first_last_fp32 REAL NOT NULL, queued_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL, config_json TEXT NOT NULL, gpus_per_node INTEGER NOT NULL,
  nodes INTEGER NOT NULL, UNIQUE(sweep_id, idx));
CREATE INDEX trials_state ON trials(state);
CREATE TABLE attempts(
  trial_id INTEGER NOT NULL REFERENCES trials(id), attempt INTEGER NOT NULL,
  fencing_token INTEGER NOT NULL UNIQUE, outcome INTEGER NOT NULL, lease_ids TEXT NOT NULL,
  worker_ids TEXT NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL,
  reason TEXT NOT NULL, resume_checkpoint TEXT NOT NULL, resume_epoch INTEGER NOT NULL,
  PRIMARY KEY(trial_id, attempt));
CREATE TABLE workers(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL, gpus_json TEXT NOT NULL,
  cpus INTEGER NOT NULL, max_cpu_trials INTEGER NOT NULL, labels_json TEXT NOT NULL,
  registered_ms INTEGER NOT NULL, last_heartbeat_ms INTEGER NOT NULL,
  draining INTEGER NOT NULL, lost INTEGER NOT NULL);
CREATE TABLE metrics(
  id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials(id),
  attempt INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
  wall_ms INTEGER NOT NULL);
CREATE INDEX metrics_trial ON metrics(trial_id, name);
CREATE TABLE checkpoints(
  id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials(id),
  attempt INTEGER NOT NULL, epoch INTEGER NOT NULL, path TEXT NOT NULL, time_ms INTEGER NOT NULL);
CREATE TABLE events(
  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, sweep_id INTEGER NOT NULL,
  trial_id INTEGER NOT NULL, state INTEGER NOT NULL, attempt INTEGER NOT NULL,
  message TEXT NOT NULL);
CREATE INDEX events_sweep ON events(sweep_id, seq);
CREATE INDEX events_time ON events(time_ms);
CREATE TABLE paper_tables(
  version TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE paper_values(
  table_id TEXT NOT NULL, network TEXT NOT NULL, width REAL NOT NULL, wbits INTEGER NOT NULL,
  abits INTEGER NOT NULL, top1 REAL, cost REAL,
  PRIMARY KEY(table_id, network, width, wbits, abits));
)sql",
      // 2: the failure kind of a failed attempt in its own column (wrpn.v1.FailureKind; 0 =
      // none). Attempts that failed before it existed get the kind their reason starts with.
      R"sql(
ALTER TABLE attempts ADD COLUMN failure_kind INTEGER NOT NULL DEFAULT 0;
UPDATE attempts SET failure_kind = CASE
    WHEN reason LIKE 'config:%' THEN 1 WHEN reason LIKE 'data:%' THEN 2
    WHEN reason LIKE 'rendezvous:%' THEN 3 WHEN reason LIKE 'interrupted:%' THEN 5 ELSE 4 END
  WHERE outcome = 3;
)sql",
      // 3: metric points clustered by trial: one B-tree keyed (trial_id, id) instead of a rowid
      // table plus a (trial_id, name) index, so storing a point writes one tree, not two, and a
      // trial's points are one range. `id` keeps its meaning (insertion order, unique); the
      // store assigns it (SqliteStore::next_metric_id_).
      R"sql(
CREATE TABLE metrics_by_trial(
  trial_id INTEGER NOT NULL REFERENCES trials(id), id INTEGER NOT NULL,
  attempt INTEGER NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, value REAL,
  wall_ms INTEGER NOT NULL, PRIMARY KEY(trial_id, id)) WITHOUT ROWID;
INSERT INTO metrics_by_trial(trial_id, id, attempt, name, step, value, wall_ms)
  SELECT trial_id, id, attempt, name, step, value, wall_ms FROM metrics;
DROP INDEX metrics_trial;
DROP TABLE metrics;
ALTER TABLE metrics_by_trial RENAME TO metrics;
)sql",
      // 4: fractional GPUs (common/gpu_share.h): a trial's share of one GPU and GPU memory cap,
      // and the GPU slots each rank of an attempt was placed on (JSON, one list per rank).
      R"sql(
ALTER TABLE trials ADD COLUMN gpu_share_units INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trials ADD COLUMN gpu_memory_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN gpu_slots TEXT NOT NULL DEFAULT '[]';
)sql",
      // 5: the trial's quantization scheme (common/quant_scheme.h); earlier trials were wrpn's.
      R"sql(
ALTER TABLE trials ADD COLUMN scheme TEXT NOT NULL DEFAULT 'wrpn';
)sql",
      // 6: Pareto-pruned sweeps (docs/pareto.md): a pruned trial's top-1 and epoch at its rung,
      // and each rung's decision (server/pareto_rung.h), which late reports are judged against.
      R"sql(
ALTER TABLE trials ADD COLUMN pruned_top1 REAL;
ALTER TABLE trials ADD COLUMN pruned_epoch INTEGER NOT NULL DEFAULT 0;
CREATE TABLE rung_decisions(
  sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
  rung INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  decided_ms INTEGER NOT NULL,
  decision_json TEXT NOT NULL,
  resumed_json TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY(sweep_id, rung));
)sql",
  };
  return m;
}

// The file name of the main database ("" for :memory:).
std::string DbFile(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  return file && *file ? file : "";
}

// A store error for the caller, who may pass it on to a client: it names the database file and
// SQLite's reason, never the statement (the SQL text goes in the kSqlPayload payload, for logs).
absl::Status SqlError(sqlite3* db, const std::string& sql) {
  const int code = sqlite3_extended_errcode(db);
  std::string file = DbFile(db);
  if (file.empty()) file = "the database";
  absl::Status st;
  if ((code & 0xff) == SQLITE_FULL) {
    // Disk full: say so plainly; nothing of the change was written.
    st = absl::ResourceExhaustedError(
        absl::StrCat("database disk is full: cannot write to ", file, " (", sqlite3_errmsg(db),
                     "); the change was not saved, retry when space is freed"));
  } else if ((code & 0xff) == SQLITE_READONLY) {
    st = absl::UnavailableError(absl::StrCat("database ", file, " is read-only (",
                                             sqlite3_errmsg(db), "); the change was not saved"));
  } else {
    std::string msg = absl::StrCat("database ", file, ": ", sqlite3_errmsg(db));
    if ((code & 0xff) == SQLITE_CONSTRAINT) st = absl::FailedPreconditionError(msg);
    else if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
      st = absl::UnavailableError(msg);
    else st = absl::InternalError(msg);
  }
  st.SetPayload(kSqlPayload, absl::Cord(sql));
  return st;
}

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK) {
      error_ = SqlError(db, sql);
      s_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  const absl::Status& error() const { return error_; }
  Stmt& Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& Bind(int i, int v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& Bind(int i, double v) {
    if (std::isnan(v)) sqlite3_bind_null(s_, i);
    else sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, const std::optional<double>& v) {
    if (v && !std::isnan(*v)) sqlite3_bind_double(s_, i, *v);
    else sqlite3_bind_null(s_, i);
    return *this;
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    int rc = sqlite3_step(s_);
    absl::Status st = rc == SQLITE_DONE ? absl::OkStatus() : SqlError(db_, sqlite3_sql(s_));
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return st;
  }
  // Steps once: true with a row, false when done.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    absl::Status st = rc == SQLITE_DONE ? absl::OkStatus() : SqlError(db_, sqlite3_sql(s_));
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    if (!st.ok()) return st;
    return false;
  }
  int64_t Int(int c) { return sqlite3_column_int64(s_, c); }
  double Double(int c) {
    return sqlite3_column_type(s_, c) == SQLITE_NULL ? std::numeric_limits<double>::quiet_NaN()
                                                     : sqlite3_column_double(s_, c);
  }
  std::optional<double> OptDouble(int c) {
    if (sqlite3_column_type(s_, c) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_double(s_, c);
  }
  std::string Text(int c) {
    const unsigned char* t = sqlite3_column_text(s_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, c)) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  absl::Status error_;
};

}  // namespace

struct SqliteStore::Statements {
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        rollback(db, "ROLLBACK"),
        upsert_sweep(db, R"(INSERT INTO sweeps(id, name, spec_json, priority, max_attempts,
            cancelled, created_ms, trial_count) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)
            ON CONFLICT(id) DO UPDATE SET name=excluded.name, spec_json=excluded.spec_json,
            priority=excluded.priority, max_attempts=excluded.max_attempts,
            cancelled=excluded.cancelled, created_ms=excluded.created_ms,
            trial_count=excluded.trial_count)"),
        upsert_trial(db, R"(INSERT INTO trials(id, sweep_id, idx, network, width, wbits, abits,
            seed, state, attempts, retry_base, error, checkpoint_path, checkpoint_epoch, best_top1,
            final_top1, final_top5, images_per_sec, fma_ratio, cost_uniform, cost_first_last_fp32,
            queued_ms, started_ms, finished_ms, config_json, gpus_per_node, nodes,
            gpu_share_units, gpu_memory_bytes, scheme, pruned_top1, pruned_epoch)
            VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,
                   ?23,?24,?25,?26,?27,?28,?29,?30,?31,?32)
            ON CONFLICT(id) DO UPDATE SET state=excluded.state, attempts=excluded.attempts,
            retry_base=excluded.retry_base, error=excluded.error,
            checkpoint_path=excluded.checkpoint_path, checkpoint_epoch=excluded.checkpoint_epoch,
            best_top1=excluded.best_top1, final_top1=excluded.final_top1,
            final_top5=excluded.final_top5, images_per_sec=excluded.images_per_sec,
            queued_ms=excluded.queued_ms, started_ms=excluded.started_ms,
            finished_ms=excluded.finished_ms, pruned_top1=excluded.pruned_top1,
            pruned_epoch=excluded.pruned_epoch)"),
        upsert_attempt(db, R"(INSERT INTO attempts(trial_id, attempt, fencing_token, outcome,
            lease_ids, worker_ids, started_ms, ended_ms, reason, resume_checkpoint, resume_epoch,
            failure_kind, gpu_slots)
            VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)
            ON CONFLICT(trial_id, attempt) DO UPDATE SET fencing_token=excluded.fencing_token,
            outcome=excluded.outcome, lease_ids=excluded.lease_ids, worker_ids=excluded.worker_ids,
            started_ms=excluded.started_ms, ended_ms=excluded.ended_ms, reason=excluded.reason,
            resume_checkpoint=excluded.resume_checkpoint, resume_epoch=excluded.resume_epoch,
            gpu_slots=excluded.gpu_slots,
            failure_kind=excluded.failure_kind)"),
        upsert_worker(db, R"(INSERT INTO workers(id, name, address, gpus_json, cpus,
            max_cpu_trials, labels_json, registered_ms, last_heartbeat_ms, draining, lost)
            VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
            ON CONFLICT(id) DO UPDATE SET name=excluded.name, address=excluded.address,
            gpus_json=excluded.gpus_json, cpus=excluded.cpus,
            max_cpu_trials=excluded.max_cpu_trials, labels_json=excluded.labels_json,
            registered_ms=excluded.registered_ms, last_heartbeat_ms=excluded.last_heartbeat_ms,
            draining=excluded.draining, lost=excluded.lost)"),
        insert_metric(db, R"(INSERT INTO metrics(trial_id, id, attempt, name, step, value,
            wall_ms) VALUES(?1,?2,?3,?4,?5,?6,?7))"),
        insert_checkpoint(db, R"(INSERT INTO checkpoints(trial_id, attempt, epoch, path, time_ms)
            VALUES(?1,?2,?3,?4,?5))"),
        insert_event(db, R"(INSERT INTO events(seq, time_ms, sweep_id, trial_id, state, attempt,
            message) VALUES(?1,?2,?3,?4,?5,?6,?7))"),
        upsert_rung_decision(db, R"(INSERT INTO rung_decisions(sweep_id, rung, epoch, decided_ms,
            decision_json, resumed_json) VALUES(?1,?2,?3,?4,?5,?6)
            ON CONFLICT(sweep_id, rung) DO UPDATE SET epoch=excluded.epoch,
            decided_ms=excluded.decided_ms, decision_json=excluded.decision_json,
            resumed_json=excluded.resumed_json)"),
        metrics_all(db, R"(SELECT trial_id, attempt, name, step, value, wall_ms FROM metrics
            WHERE trial_id=?1 ORDER BY id)"),
        metrics_named(db, R"(SELECT trial_id, attempt, name, step, value, wall_ms FROM metrics
            WHERE trial_id=?1 AND name=?2 ORDER BY id)") {}

  absl::Status error() const {
    for (const Stmt* s : {&begin, &commit, &rollback, &upsert_sweep, &upsert_trial,
                          &upsert_attempt, &upsert_worker, &insert_metric, &insert_checkpoint,
                          &insert_event, &upsert_rung_decision, &metrics_all, &metrics_named}) {
      if (!s->error().ok()) return s->error();
    }
    return absl::OkStatus();
  }

  Stmt begin, commit, rollback, upsert_sweep, upsert_trial, upsert_attempt, upsert_worker,
      insert_metric, insert_checkpoint, insert_event, upsert_rung_decision, metrics_all,
      metrics_named;
};

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open database '", path, "': ", msg));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  sqlite3_busy_timeout(db, 5000);
  // Both checks come before the first write: a file that is not ours is left as it was.
  if (sqlite3_db_readonly(db, "main") == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", path, " is read-only: the coordinator needs to write it (and its -wal and "
        "-shm files beside it)"));
  }
  RETURN_IF_ERROR(store->CheckIsWrpnDatabase(path));
  if (absl::Status wal = store->Exec("PRAGMA journal_mode=WAL"); !wal.ok()) {
    const int code = sqlite3_extended_errcode(db) & 0xff;
    if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", path, " is read-only: cannot create its write-ahead log beside it (",
          sqlite3_errmsg(db), ")"));
    }
    return wal;
  }
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(store->Migrate());
  {
    Stmt q(db, "SELECT COALESCE(MAX(id), 0) FROM metrics");
    RETURN_IF_ERROR(q.error());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) store->next_metric_id_ = q.Int(0) + 1;
    while (row) { ASSIGN_OR_RETURN(row, q.Step()); }
  }
  store->st_ = std::make_unique<Statements>(db);
  RETURN_IF_ERROR(store->st_->error());
  return store;
}

SqliteStore::SqliteStore(sqlite3* db) : db_(db) {}

SqliteStore::~SqliteStore() {
  st_.reset();  // finalize statements before closing
  sqlite3_close(db_);
}

absl::Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqlError(db_, sql);
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::CheckIsWrpnDatabase(const std::string& path) {
  Stmt q(db_, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  if (!q.error().ok()) {
    // Not SQLite at all ("file is not a database").
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a wrpn database (", sqlite3_errmsg(db_), "); give --db a new file"));
  }
  std::vector<std::string> tables;
  for (;;) {
    auto row = q.Step();
    if (!row.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a wrpn database (", row.status().message(), ")"));
    }
    if (!*row) break;
    tables.push_back(q.Text(0));
  }
  if (tables.empty() ||
      std::find(tables.begin(), tables.end(), "schema_migrations") != tables.end()) {
    return absl::OkStatus();  // new, or ours
  }
  std::string some;
  for (size_t i = 0; i < tables.size() && i < 3; ++i) absl::StrAppend(&some, i ? ", " : "", tables[i]);
  return absl::FailedPreconditionError(absl::StrCat(
      path, " is not a wrpn database: it has tables (", some, tables.size() > 3 ? ", ..." : "",
      ") but no schema_migrations; nothing was written to it. Give --db a new file or a wrpn "
      "database"));
}

absl::Status SqliteStore::Migrate() {
  RETURN_IF_ERROR(Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY, "
      "applied_ms INTEGER NOT NULL)"));
  int current = 0;
  {
    Stmt q(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    RETURN_IF_ERROR(q.error());
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) current = static_cast<int>(q.Int(0));
    while (row) { ASSIGN_OR_RETURN(row, q.Step()); }
  }
  const auto& migrations = Migrations();
  if (current > static_cast<int>(migrations.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", current, " is newer than this coordinator (",
                     migrations.size(), ")"));
  }
  for (int v = current + 1; v <= static_cast<int>(migrations.size()); ++v) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = Exec(migrations[v - 1]);
    if (st.ok()) {
      Stmt ins(db_, "INSERT INTO schema_migrations(version, applied_ms) "
                    "VALUES(?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))");
      st = ins.error().ok() ? ins.Bind(1, v).Run() : ins.error();
    }
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return absl::InternalError(absl::StrCat("migration ", v, " failed: ", st.message()));
    }
    RETURN_IF_ERROR(Exec("COMMIT"));
  }
  schema_version_ = static_cast<int>(migrations.size());
  return absl::OkStatus();
}

absl::Status SqliteStore::Apply(const Mutation& m) {
  if (m.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(st_->begin.Run());
  absl::Status st = ApplyLocked(m);
  if (st.ok()) {
    CrashPoint(m.op, "uncommitted");
    st = st_->commit.Run();
  }
  if (!st.ok()) {
    (void)st_->rollback.Run();
    return st;
  }
  CrashPoint(m.op, "committed");
  return absl::OkStatus();
}

absl::Status SqliteStore::ApplyLocked(const Mutation& m) {
  for (const auto& s : m.sweeps) {
    RETURN_IF_ERROR(st_->upsert_sweep.Bind(1, s.id).Bind(2, s.name).Bind(3, s.spec_json)
                        .Bind(4, s.priority).Bind(5, s.max_attempts).Bind(6, s.cancelled ? 1 : 0)
                        .Bind(7, s.created_ms).Bind(8, s.trial_count).Run());
  }
  for (const auto& t : m.trials) {
    RETURN_IF_ERROR(st_->upsert_trial.Bind(1, t.id).Bind(2, t.sweep_id).Bind(3, t.index)
                        .Bind(4, t.network).Bind(5, t.width).Bind(6, t.wbits).Bind(7, t.abits)
                        .Bind(8, t.seed).Bind(9, static_cast<int>(t.state)).Bind(10, t.attempts)
                        .Bind(11, t.retry_base).Bind(12, t.error).Bind(13, t.checkpoint_path)
                        .Bind(14, t.checkpoint_epoch).Bind(15, t.best_top1)
                        .Bind(16, t.final_top1).Bind(17, t.final_top5).Bind(18, t.images_per_sec)
                        .Bind(19, t.fma_ratio).Bind(20, t.cost_uniform)
                        .Bind(21, t.cost_first_last_fp32).Bind(22, t.queued_ms)
                        .Bind(23, t.started_ms).Bind(24, t.finished_ms).Bind(25, t.config_json)
                        .Bind(26, t.gpus_per_node).Bind(27, t.nodes)
                        .Bind(28, t.gpu_share_units).Bind(29, t.gpu_memory_bytes)
                        .Bind(30, t.scheme).Bind(31, t.pruned_top1).Bind(32, t.pruned_epoch)
                        .Run());
  }
  for (const auto& a : m.attempts) {
    RETURN_IF_ERROR(st_->upsert_attempt.Bind(1, a.trial_id).Bind(2, a.attempt)
                        .Bind(3, a.fencing_token).Bind(4, static_cast<int>(a.outcome))
                        .Bind(5, json(a.lease_ids).dump()).Bind(6, json(a.worker_ids).dump())
                        .Bind(7, a.started_ms).Bind(8, a.ended_ms).Bind(9, a.reason)
                        .Bind(10, a.resume_checkpoint).Bind(11, a.resume_epoch)
                        .Bind(12, a.failure_kind ? static_cast<int>(*a.failure_kind) : 0)
                        .Bind(13, json(a.gpu_slots).dump()).Run());
  }
  for (const auto& w : m.workers) {
    json gpus = json::array();
    for (const auto& g : w.gpus)
      gpus.push_back({{"index", g.index}, {"memory_bytes", g.memory_bytes}, {"name", g.name}});
    RETURN_IF_ERROR(st_->upsert_worker.Bind(1, w.id).Bind(2, w.name).Bind(3, w.address)
                        .Bind(4, gpus.dump()).Bind(5, w.cpus).Bind(6, w.max_cpu_trials)
                        .Bind(7, json(w.labels).dump()).Bind(8, w.registered_ms)
                        .Bind(9, w.last_heartbeat_ms).Bind(10, w.draining ? 1 : 0)
                        .Bind(11, w.lost ? 1 : 0).Run());
  }
  for (const auto& p : m.metrics) {
    RETURN_IF_ERROR(st_->insert_metric.Bind(1, p.trial_id).Bind(2, next_metric_id_++)
                        .Bind(3, p.attempt).Bind(4, p.name).Bind(5, p.step).Bind(6, p.value)
                        .Bind(7, p.wall_ms).Run());
  }
  for (const auto& c : m.checkpoints) {
    RETURN_IF_ERROR(st_->insert_checkpoint.Bind(1, c.trial_id).Bind(2, c.attempt)
                        .Bind(3, c.epoch).Bind(4, c.path).Bind(5, c.time_ms).Run());
  }
  for (const auto& d : m.rung_decisions) {
    RETURN_IF_ERROR(st_->upsert_rung_decision.Bind(1, d.sweep_id).Bind(2, d.rung)
                        .Bind(3, d.epoch).Bind(4, d.decided_ms).Bind(5, d.decision_json)
                        .Bind(6, d.resumed_json).Run());
  }
  for (const auto& e : m.events) {
    RETURN_IF_ERROR(st_->insert_event.Bind(1, e.seq).Bind(2, e.time_ms).Bind(3, e.sweep_id)
                        .Bind(4, e.trial_id).Bind(5, e.state).Bind(6, e.attempt)
                        .Bind(7, e.message).Run());
  }
  return absl::OkStatus();
}

namespace {

// Snapshot readers, one per table (SqliteStore::Load).
absl::Status LoadSweeps(sqlite3* db, std::vector<SweepRecord>* out) {
  Stmt q(db, "SELECT id, name, spec_json, priority, max_attempts, cancelled, created_ms, "
              "trial_count FROM sweeps ORDER BY id");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    SweepRecord r;
    r.id = q.Int(0), r.name = q.Text(1), r.spec_json = q.Text(2);
    r.priority = static_cast<int>(q.Int(3)), r.max_attempts = static_cast<int>(q.Int(4));
    r.cancelled = q.Int(5) != 0, r.created_ms = q.Int(6), r.trial_count = q.Int(7);
    out->push_back(std::move(r));
  }
  return absl::OkStatus();
}

absl::Status LoadTrials(sqlite3* db, std::vector<TrialRecord>* out) {
  Stmt q(db, "SELECT id, sweep_id, idx, network, width, wbits, abits, seed, state, attempts, "
              "retry_base, error, checkpoint_path, checkpoint_epoch, best_top1, final_top1, "
              "final_top5, images_per_sec, fma_ratio, cost_uniform, cost_first_last_fp32, "
              "queued_ms, started_ms, finished_ms, config_json, gpus_per_node, nodes, "
              "gpu_share_units, gpu_memory_bytes, scheme, pruned_top1, pruned_epoch FROM trials "
              "ORDER BY id");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    TrialRecord t;
    t.id = q.Int(0), t.sweep_id = q.Int(1), t.index = q.Int(2), t.network = q.Text(3);
    t.width = q.Double(4), t.wbits = static_cast<int>(q.Int(5));
    t.abits = static_cast<int>(q.Int(6)), t.seed = q.Int(7);
    t.state = static_cast<TrialState>(q.Int(8)), t.attempts = static_cast<int>(q.Int(9));
    t.retry_base = static_cast<int>(q.Int(10)), t.error = q.Text(11);
    t.checkpoint_path = q.Text(12), t.checkpoint_epoch = q.Int(13);
    t.best_top1 = q.OptDouble(14), t.final_top1 = q.OptDouble(15);
    t.final_top5 = q.OptDouble(16), t.images_per_sec = q.OptDouble(17);
    t.fma_ratio = q.Double(18), t.cost_uniform = q.Double(19);
    t.cost_first_last_fp32 = q.Double(20), t.queued_ms = q.Int(21), t.started_ms = q.Int(22);
    t.finished_ms = q.Int(23), t.config_json = q.Text(24);
    t.gpus_per_node = static_cast<int>(q.Int(25)), t.nodes = static_cast<int>(q.Int(26));
    t.gpu_share_units = q.Int(27), t.gpu_memory_bytes = q.Int(28);
    t.scheme = q.Text(29);
    t.pruned_top1 = q.OptDouble(30), t.pruned_epoch = q.Int(31);
    out->push_back(std::move(t));
  }
  return absl::OkStatus();
}

absl::Status LoadAttempts(sqlite3* db, std::vector<AttemptRecord>* out) {
  Stmt q(db, "SELECT trial_id, attempt, fencing_token, outcome, lease_ids, worker_ids, "
              "started_ms, ended_ms, reason, resume_checkpoint, resume_epoch, failure_kind, "
              "gpu_slots FROM attempts "
              "ORDER BY trial_id, attempt");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AttemptRecord a;
    a.trial_id = q.Int(0), a.attempt = static_cast<int>(q.Int(1)), a.fencing_token = q.Int(2);
    a.outcome = static_cast<AttemptOutcome>(q.Int(3));
    a.lease_ids = json::parse(q.Text(4)).get<std::vector<std::string>>();
    a.worker_ids = json::parse(q.Text(5)).get<std::vector<std::string>>();
    a.started_ms = q.Int(6), a.ended_ms = q.Int(7), a.reason = q.Text(8);
    a.resume_checkpoint = q.Text(9), a.resume_epoch = q.Int(10);
    if (const int64_t k = q.Int(11); k > 0) a.failure_kind = static_cast<FailureKind>(k);
    a.gpu_slots = json::parse(q.Text(12)).get<std::vector<std::vector<int>>>();
    out->push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status LoadWorkers(sqlite3* db, std::vector<WorkerRecord>* out) {
  Stmt q(db, "SELECT id, name, address, gpus_json, cpus, max_cpu_trials, labels_json, "
              "registered_ms, last_heartbeat_ms, draining, lost FROM workers ORDER BY id");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    WorkerRecord w;
    w.id = q.Text(0);
    w.name = q.Text(1), w.address = q.Text(2);
    for (const auto& g : json::parse(q.Text(3))) {
      w.gpus.push_back({g.at("index").get<int>(), g.at("memory_bytes").get<int64_t>(),
                        g.at("name").get<std::string>()});
    }
    w.cpus = static_cast<int>(q.Int(4)), w.max_cpu_trials = static_cast<int>(q.Int(5));
    w.labels = json::parse(q.Text(6)).get<std::map<std::string, std::string>>();
    w.registered_ms = q.Int(7), w.last_heartbeat_ms = q.Int(8);
    w.draining = q.Int(9) != 0, w.lost = q.Int(10) != 0;
    out->push_back(std::move(w));
  }
  return absl::OkStatus();
}

absl::Status LoadCheckpoints(sqlite3* db, std::vector<CheckpointRecord>* out) {
  Stmt q(db, "SELECT trial_id, attempt, epoch, path, time_ms FROM checkpoints "
              "ORDER BY trial_id, attempt, epoch, id");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out->push_back({q.Int(0), static_cast<int>(q.Int(1)), q.Int(2), q.Text(3),
                             q.Int(4)});
  }
  return absl::OkStatus();
}

absl::Status LoadRungDecisions(sqlite3* db, std::vector<RungDecisionRecord>* out) {
  Stmt q(db, "SELECT sweep_id, rung, epoch, decided_ms, decision_json, resumed_json "
              "FROM rung_decisions ORDER BY sweep_id, rung");
  RETURN_IF_ERROR(q.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out->push_back({q.Int(0), static_cast<int>(q.Int(1)), q.Int(2), q.Int(3), q.Text(4),
                    q.Text(5)});
  }
  return absl::OkStatus();
}

absl::Status LoadCounters(sqlite3* db, Snapshot* s) {
  Stmt q(db, "SELECT COALESCE(MAX(seq), 0), (SELECT COUNT(*) FROM metrics) FROM events");
  RETURN_IF_ERROR(q.error());
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (row) {
    s->max_event_seq = q.Int(0);
    s->metric_count = q.Int(1);
    ASSIGN_OR_RETURN(row, q.Step());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Snapshot> SqliteStore::Load() {
  Snapshot s;
  RETURN_IF_ERROR(LoadSweeps(db_, &s.sweeps));
  RETURN_IF_ERROR(LoadTrials(db_, &s.trials));
  RETURN_IF_ERROR(LoadAttempts(db_, &s.attempts));
  RETURN_IF_ERROR(LoadWorkers(db_, &s.workers));
  RETURN_IF_ERROR(LoadCheckpoints(db_, &s.checkpoints));
  RETURN_IF_ERROR(LoadRungDecisions(db_, &s.rung_decisions));
  RETURN_IF_ERROR(LoadCounters(db_, &s));
  return s;
}

absl::StatusOr<std::vector<MetricRecord>> SqliteStore::Metrics(int64_t trial_id,
                                                               std::string_view name) {
  Stmt& q = name.empty() ? st_->metrics_all : st_->metrics_named;
  q.Bind(1, trial_id);
  if (!name.empty()) q.Bind(2, std::string(name));
  std::vector<MetricRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Int(0), static_cast<int>(q.Int(1)), q.Text(2), q.Int(3), q.Double(4),
                   q.Int(5)});
  }
  return out;
}

absl::StatusOr<std::vector<EventRecord>> SqliteStore::Events(int64_t sweep_id, int64_t after_seq,
                                                             int limit) {
  Stmt q(db_, sweep_id == 0
                  ? "SELECT seq, time_ms, sweep_id, trial_id, state, attempt, message FROM events "
                    "WHERE seq > ?2 ORDER BY seq LIMIT ?3"
                  : "SELECT seq, time_ms, sweep_id, trial_id, state, attempt, message FROM events "
                    "WHERE sweep_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
  RETURN_IF_ERROR(q.error());
  q.Bind(1, sweep_id).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit));
  std::vector<EventRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Int(0), q.Int(1), q.Int(2), q.Int(3), static_cast<int>(q.Int(4)),
                   static_cast<int>(q.Int(5)), q.Text(6)});
  }
  return out;
}

absl::StatusOr<int64_t> SqliteStore::PruneEvents(int64_t before_ms) {
  Stmt q(db_, "DELETE FROM events WHERE time_ms < ?1");
  RETURN_IF_ERROR(q.error());
  RETURN_IF_ERROR(q.Bind(1, before_ms).Run());
  return static_cast<int64_t>(sqlite3_changes(db_));
}

absl::Status SqliteStore::PutPaperTables(const PaperTables& tables) {
  ASSIGN_OR_RETURN(PaperTables current, GetPaperTables());
  if (current.version == tables.version) return absl::OkStatus();
  RETURN_IF_ERROR(st_->begin.Run());
  auto body = [&]() -> absl::Status {
    RETURN_IF_ERROR(Exec("DELETE FROM paper_values"));
    RETURN_IF_ERROR(Exec("DELETE FROM paper_tables"));
    Stmt t(db_, "INSERT INTO paper_tables(version, json) VALUES(?1, ?2)");
    RETURN_IF_ERROR(t.error());
    RETURN_IF_ERROR(t.Bind(1, tables.version).Bind(2, tables.json).Run());
    Stmt v(db_, "INSERT INTO paper_values(table_id, network, width, wbits, abits, top1, cost) "
                "VALUES(?1,?2,?3,?4,?5,?6,?7)");
    RETURN_IF_ERROR(v.error());
    for (const auto& p : tables.values) {
      RETURN_IF_ERROR(v.Bind(1, p.table).Bind(2, p.network).Bind(3, p.width).Bind(4, p.wbits)
                          .Bind(5, p.abits).Bind(6, p.top1).Bind(7, p.cost).Run());
    }
    return absl::OkStatus();
  };
  absl::Status st = body();
  if (st.ok()) st = st_->commit.Run();
  if (!st.ok()) (void)st_->rollback.Run();
  return st;
}

absl::StatusOr<PaperTables> SqliteStore::GetPaperTables() {
  PaperTables out;
  Stmt t(db_, "SELECT version, json FROM paper_tables LIMIT 1");
  RETURN_IF_ERROR(t.error());
  ASSIGN_OR_RETURN(bool row, t.Step());
  if (!row) return out;
  out.version = t.Text(0);
  out.json = t.Text(1);
  ASSIGN_OR_RETURN(row, t.Step());
  Stmt v(db_, "SELECT table_id, network, width, wbits, abits, top1, cost FROM paper_values "
              "ORDER BY rowid");
  RETURN_IF_ERROR(v.error());
  for (;;) {
    ASSIGN_OR_RETURN(bool r, v.Step());
    if (!r) break;
    out.values.push_back({v.Text(0), v.Text(1), v.Double(2), static_cast<int>(v.Int(3)),
                          static_cast<int>(v.Int(4)), v.OptDouble(5), v.OptDouble(6)});
  }
  return out;
}

}  // namespace wrpn::server
