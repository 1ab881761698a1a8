#pragma once
// MemoryStore: Store kept in maps, for scheduler and coordinator tests. Owns its data; not
// thread-safe (the coordinator serialises calls). Checks the same references SqliteStore's
// foreign keys check, so the shared store suite holds for both.
#include <map>
#include <utility>

#include "server/store.h"

namespace wrpn::server {

class MemoryStore final : public Store {
 public:
  absl::Status Apply(const Mutation& m) override;
  absl::StatusOr<Snapshot> Load() override;
  absl::StatusOr<std::vector<MetricRecord>> Metrics(int64_t trial_id,
                                                    std::string_view name) override;
  absl::StatusOr<std::vector<EventRecord>> Events(int64_t sweep_id, int64_t after_seq,
                                                  int limit) override;
  absl::StatusOr<int64_t> PruneEvents(int64_t before_ms) override;
  absl::Status PutPaperTables(const PaperTables& tables) override;
  absl::StatusOr<PaperTables> GetPaperTables() override;

 private:
  std::map<int64_t, SweepRecord> sweeps_;
  std::map<int64_t, TrialRecord> trials_;
  std::map<std::pair<int64_t, int>, AttemptRecord> attempts_;
  std::map<std::string, WorkerRecord> workers_;
  std::vector<MetricRecord> metrics_;
  std::vector<CheckpointRecord> checkpoints_;
  std::vector<EventRecord> events_;
  std::map<std::pair<int64_t, int>, RungDecisionRecord> rung_decisions_;
  PaperTables paper_;
};

}  // namespace wrpn::server
