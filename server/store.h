#pragma once
// Store: the coordinator's durable state. Records are plain values; the coordinator keeps the
// working set in memory and writes every state change through Apply() as one transaction.
// Implementations: SqliteStore (sqlite_store.h) and MemoryStore (memory_store.h). Implementations
// are not required to be thread-safe; the coordinator serialises calls.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/trainer_protocol.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wrpn::server {

// Numbers match wrpn.v1.TrialState / AttemptOutcome.
enum class TrialState {
  kQueued = 1,
  kRunning = 2,
  kSucceeded = 3,
  kFailed = 4,
  kCancelled = 5,
  kPruned = 6,  // stopped at a rung of a Pareto-pruned sweep, off the front (docs/pareto.md)
};
inline constexpr int kTrialStateCount = 7;  // array size for counts indexed by TrialState
enum class AttemptOutcome {
  kRunning = 1,
  kSucceeded = 2,
  kFailed = 3,
  kExpired = 4,
  kCancelled = 5,
  kRung = 6,  // stopped at its Pareto rung with a checkpoint (docs/pareto.md)
};
const char* TrialStateName(TrialState s);      // queued, running, ...
const char* AttemptOutcomeName(AttemptOutcome o);

struct SweepRecord {
  int64_t id = 0;
  std::string name;
  std::string spec_json;  // canonical spec (SweepSpecToJson)
  int priority = 0;
  int max_attempts = 3;
  bool cancelled = false;
  int64_t created_ms = 0;
  int64_t trial_count = 0;
  bool operator==(const SweepRecord&) const = default;
};

struct TrialRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  int64_t index = 0;
  std::string network;
  double width = 1;
  int wbits = 32;
  int abits = 32;
  int64_t seed = 0;
  TrialState state = TrialState::kQueued;
  int attempts = 0;    // attempts started, ever
  // Attempts not counted against max_attempts: `attempts` when the trial was last re-queued by
  // RetrySweep or at a rung, plus the launch failures (FailureKind::kLaunch) since.
  int retry_base = 0;
  std::string error;
  std::string checkpoint_path;
  int64_t checkpoint_epoch = 0;
  std::optional<double> best_top1, final_top1, final_top5, images_per_sec;
  double fma_ratio = 0, cost_uniform = 0, cost_first_last_fp32 = 0;
  int64_t queued_ms = 0, started_ms = 0, finished_ms = 0;
  std::string config_json;
  int gpus_per_node = 0;
  int nodes = 1;
  int64_t gpu_share_units = 0;   // > 0: a fraction of one GPU (common/gpu_share.h)
  int64_t gpu_memory_bytes = 0;  // the trial's GPU memory cap; 0 = none
  std::string scheme = "wrpn";  // quantization scheme (common/quant_scheme.h)
  // kPruned: top-1 at the rung the trial was pruned at, after pruned_epoch epochs.
  std::optional<double> pruned_top1;
  int64_t pruned_epoch = 0;
  bool operator==(const TrialRecord&) const = default;
};

// One attempt of a trial: its leases (one per node, rank order) share the fencing token.
struct AttemptRecord {
  int64_t trial_id = 0;
  int attempt = 1;
  int64_t fencing_token = 0;
  AttemptOutcome outcome = AttemptOutcome::kRunning;
  std::vector<std::string> lease_ids;
  std::vector<std::string> worker_ids;
  int64_t started_ms = 0, ended_ms = 0;
  std::string reason;
  std::string resume_checkpoint;
  int64_t resume_epoch = 0;
  std::optional<FailureKind> failure_kind;  // kFailed attempts only
  std::vector<std::vector<int>> gpu_slots;  // per rank: the worker's GPU slots it was placed on
  bool operator==(const AttemptRecord&) const = default;
};

struct GpuRecord {
  int index = 0;
  int64_t memory_bytes = 0;
  std::string name;
  bool operator==(const GpuRecord&) const = default;
};

struct WorkerRecord {
  std::string id;
  std::string name;
  std::string address;
  std::vector<GpuRecord> gpus;
  int cpus = 0;
  int max_cpu_trials = 1;
  std::map<std::string, std::string> labels;
  int64_t registered_ms = 0;
  int64_t last_heartbeat_ms = 0;
  bool draining = false;
  bool lost = false;
  bool operator==(const WorkerRecord&) const = default;
};

struct MetricRecord {
  int64_t trial_id = 0;
  int attempt = 0;
  std::string name;
  int64_t step = 0;
  double value = 0;
  int64_t wall_ms = 0;
  bool operator==(const MetricRecord&) const = default;
};

struct CheckpointRecord {
  int64_t trial_id = 0;
  int attempt = 0;
  int64_t epoch = 0;
  std::string path;
  int64_t time_ms = 0;
  bool operator==(const CheckpointRecord&) const = default;
};

struct EventRecord {
  int64_t seq = 0;  // assigned by the coordinator, increasing
  int64_t time_ms = 0;
  int64_t sweep_id = 0;
  int64_t trial_id = 0;  // 0 = about the sweep
  int state = 0;         // TrialState of the trial after the event, 0 for sweep events
  int attempt = 0;
  std::string message;
  bool operator==(const EventRecord&) const = default;
};

// A Pareto-pruned sweep's decision at one rung (server/pareto_rung.h): which cells went on and
// which trials were pruned there. Upserted by (sweep_id, rung) as late reports extend it.
struct RungDecisionRecord {
  int64_t sweep_id = 0;
  int rung = 0;        // index into search.rungs
  int64_t epoch = 0;   // search.rungs[rung]
  int64_t decided_ms = 0;
  std::string decision_json;  // RungDecisionToJson
  // Trials pruned here that `retry --pruned` resumed to the end: JSON array of trial ids.
  std::string resumed_json = "[]";
  bool operator==(const RungDecisionRecord&) const = default;
};

struct PaperValueRecord {
  std::string table;
  std::string network;
  double width = 1;
  int wbits = 32;
  int abits = 32;
  std::optional<double> top1, cost;
  bool operator==(const PaperValueRecord&) const = default;
};

// The paper's reference values as loaded from data/wrpn_tables.json.
struct PaperTables {
  std::string version;  // content hash of `json`
  std::string json;
  std::vector<PaperValueRecord> values;
};

// Everything one state change writes. Sweeps, trials, attempts and workers are upserts (keyed by
// id, (trial_id, attempt), id); metrics, checkpoints and events are appends.
struct Mutation {
  std::vector<SweepRecord> sweeps;
  std::vector<TrialRecord> trials;
  std::vector<AttemptRecord> attempts;
  std::vector<WorkerRecord> workers;
  std::vector<MetricRecord> metrics;
  std::vector<CheckpointRecord> checkpoints;
  std::vector<EventRecord> events;
  std::vector<RungDecisionRecord> rung_decisions;  // upserts by (sweep_id, rung)
  // The operation that made it ("metrics", "lease_grant", ...): names its crash points
  // (<op>.uncommitted, <op>.committed; common/crash_point.h).
  std::string_view op;
  bool empty() const {
    return sweeps.empty() && trials.empty() && attempts.empty() && workers.empty() &&
           metrics.empty() && checkpoints.empty() && events.empty() && rung_decisions.empty();
  }
};

// What the coordinator reloads at start (metrics and events stay in the store).
struct Snapshot {
  std::vector<SweepRecord> sweeps;        // by id
  std::vector<TrialRecord> trials;        // by id
  std::vector<AttemptRecord> attempts;    // by (trial_id, attempt)
  std::vector<WorkerRecord> workers;      // by id
  std::vector<CheckpointRecord> checkpoints;  // by (trial_id, attempt, epoch)
  std::vector<RungDecisionRecord> rung_decisions;  // by (sweep_id, rung)
  int64_t max_event_seq = 0;
  int64_t metric_count = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // Writes the whole mutation or nothing. A sweep, trial or attempt that references a missing
  // parent is an error (FAILED_PRECONDITION) and nothing is written.
  [[nodiscard]] virtual absl::Status Apply(const Mutation& m) = 0;
  virtual absl::StatusOr<Snapshot> Load() = 0;
  // Metric points of one trial in insertion order; `name` empty = every name.
  virtual absl::StatusOr<std::vector<MetricRecord>> Metrics(int64_t trial_id,
                                                            std::string_view name) = 0;
  // Events of a sweep (0 = all sweeps) with seq > after_seq, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<EventRecord>> Events(int64_t sweep_id, int64_t after_seq,
                                                          int limit) = 0;
  // Deletes events older than `before_ms`; returns how many.
  virtual absl::StatusOr<int64_t> PruneEvents(int64_t before_ms) = 0;
  // Replaces the stored paper tables when `tables.version` differs from the stored one.
  [[nodiscard]] virtual absl::Status PutPaperTables(const PaperTables& tables) = 0;
  // The stored tables (version empty when none were ever stored).
  virtual absl::StatusOr<PaperTables> GetPaperTables() = 0;
};

}  // namespace wrpn::server
