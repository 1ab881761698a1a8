#pragma once
// SqliteStore: Store in one SQLite file, WAL mode, foreign keys on, synchronous=NORMAL (a
// committed transaction survives a process crash; a power loss may drop the last ones). Numbered
// schema migrations are applied at Open. Owns the connection and its prepared statements; not
// thread-safe (the coordinator serialises calls).
#include <cstdint>
#include <memory>
#include <string>

#include "server/store.h"

struct sqlite3;

namespace wrpn::server {

// Store errors carry the failed statement's SQL under this payload key, for the coordinator's log;
// their messages never contain it (they may reach a client).
inline constexpr char kSqlPayload[] = "wrpn.dev/sql";

class SqliteStore final : public Store {
 public:
  // Opens (creating when missing) the database at `path` and migrates it to the latest schema.
  // Refuses, before writing anything, a read-only file and a file that is not a wrpn database.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  absl::Status Apply(const Mutation& m) override;
  absl::StatusOr<Snapshot> Load() override;
  absl::StatusOr<std::vector<MetricRecord>> Metrics(int64_t trial_id,
                                                    std::string_view name) override;
  absl::StatusOr<std::vector<EventRecord>> Events(int64_t sweep_id, int64_t after_seq,
                                                  int limit) override;
  absl::StatusOr<int64_t> PruneEvents(int64_t before_ms) override;
  absl::Status PutPaperTables(const PaperTables& tables) override;
  absl::StatusOr<PaperTables> GetPaperTables() override;

  // The schema version after Open (number of migrations applied).
  int schema_version() const { return schema_version_; }

 private:
  struct Statements;
  explicit SqliteStore(sqlite3* db);
  // FAILED_PRECONDITION naming `path` when the file has tables but is not a wrpn database.
  absl::Status CheckIsWrpnDatabase(const std::string& path);
  absl::Status Migrate();
  absl::Status Exec(const char* sql);
  absl::Status ApplyLocked(const Mutation& m);

  sqlite3* db_;
  std::unique_ptr<Statements> st_;
  int schema_version_ = 0;
  // The id of the next metric point (ids order a trial's points); a rolled-back Apply leaves a gap.
  int64_t next_metric_id_ = 1;
};

}  // namespace wrpn::server
