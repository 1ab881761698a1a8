#pragma once
// Coordinator: the service core behind both gRPC services and the HTTP JSON API. Owns the working
// set (sweeps, trials, attempts, live leases, workers) in memory, writes every state change
// through the Store as one transaction, and asks the Scheduler whom to dispatch to. Requests and
// answers are the wrpn.v1 messages; errors are absl::Status (converted to gRPC codes at the RPC
// edge). Thread-safe: one mutex serialises every operation. Time comes from the Clock seam; lease
// expiry happens in Tick(), which every worker call runs first and the server runs periodically.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "server/init_dependencies.h"
#include "server/metrics.h"
#include "server/paper_tables.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

struct CoordinatorOptions {
  // A lease not renewed by a heartbeat (or any call carrying it) for this long expires; a worker
  // silent for this long is marked lost.
  std::chrono::milliseconds lease_ttl{30000};
  // The paper's reference values (data/wrpn_tables.json). Empty: keep the copy in the store.
  std::string paper_tables_path;
  // A trial whose attempt failed (not one interrupted by a worker's shutdown, not an expired
  // lease) is leased again only after this long, doubled for each further failure in a row, at
  // most retry_backoff_max; 0 = at once. wrpn-coordinator --retry-backoff sets it (default 10 s).
  std::chrono::milliseconds retry_backoff{0};
  std::chrono::milliseconds retry_backoff_max{300000};
};

class Coordinator {
 public:
  // Loads every sweep, trial, attempt and worker from `store`; leases that were live get their
  // full TTL again from now. `store`, `clock` and `registry` must outlive the coordinator.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(Store* store, const Clock* clock,
                                                             MetricsRegistry* registry,
                                                             CoordinatorOptions options);
  ~Coordinator();

  // ---- client API ----
  absl::StatusOr<pb::SubmitSweepResponse> SubmitSweep(const pb::SubmitSweepRequest& req);
  absl::StatusOr<pb::GetSweepResponse> GetSweep(const pb::GetSweepRequest& req);
  absl::StatusOr<pb::ListSweepsResponse> ListSweeps(const pb::ListSweepsRequest& req);
  absl::StatusOr<pb::CancelSweepResponse> CancelSweep(const pb::CancelSweepRequest& req);
  absl::StatusOr<pb::RetrySweepResponse> RetrySweep(const pb::RetrySweepRequest& req);
  absl::StatusOr<pb::ListTrialsResponse> ListTrials(const pb::ListTrialsRequest& req);
  absl::StatusOr<pb::GetTrialResponse> GetTrial(const pb::GetTrialRequest& req);
  absl::StatusOr<pb::GetTrialMetricsResponse> GetTrialMetrics(
      const pb::GetTrialMetricsRequest& req);
  absl::StatusOr<pb::GetGridResponse> GetGrid(const pb::GetGridRequest& req);
  absl::StatusOr<pb::GetPaperTablesResponse> GetPaperTables(const pb::GetPaperTablesRequest& req);
  absl::StatusOr<pb::ListWorkersResponse> ListWorkers(const pb::ListWorkersRequest& req);
  absl::StatusOr<pb::DrainWorkerResponse> DrainWorker(const pb::DrainWorkerRequest& req);
  absl::StatusOr<pb::GetTrialLogsResponse> GetTrialLogs(const pb::GetTrialLogsRequest& req);
  // Streams the sweep, then each trial event of it, until the sweep is finished (all trials
  // terminal), `send` returns false, `stop` returns true or the coordinator shuts down. Blocks.
  absl::Status WatchSweep(const pb::WatchSweepRequest& req,
                          const std::function<bool(const pb::WatchSweepResponse&)>& send,
                          const std::function<bool()>& stop);

  // ---- worker API ----
  absl::StatusOr<pb::RegisterWorkerResponse> RegisterWorker(const pb::RegisterWorkerRequest& req);
  absl::StatusOr<pb::HeartbeatResponse> Heartbeat(const pb::HeartbeatRequest& req);
  absl::StatusOr<pb::AcquireTrialResponse> AcquireTrial(const pb::AcquireTrialRequest& req);
  absl::StatusOr<pb::ReportMetricsResponse> ReportMetrics(const pb::ReportMetricsRequest& req);
  absl::StatusOr<pb::ReportCheckpointResponse> ReportCheckpoint(
      const pb::ReportCheckpointRequest& req);
  absl::StatusOr<pb::CompleteTrialResponse> CompleteTrial(const pb::CompleteTrialRequest& req);
  // Appends lines to the lease's trial log (memory only, the last kMaxLogLines per trial).
  absl::StatusOr<pb::ReportLogsResponse> ReportLogs(const pb::ReportLogsRequest& req);
  // Node rank 0 of a multi-node attempt reports its TCPStore port; the other nodes' leases are
  // handed out from then on, carrying it.
  absl::StatusOr<pb::ReportRendezvousResponse> ReportRendezvous(
      const pb::ReportRendezvousRequest& req);
  static constexpr int64_t kMaxLogLines = 5000;

  // Expires leases past their TTL (re-queueing or failing their trials) and marks silent workers
  // lost.
  absl::Status Tick();
  // Deletes events older than `retention`; returns how many.
  absl::StatusOr<int64_t> PruneEvents(std::chrono::hours retention);
  // Wakes and ends every WatchSweep; later calls still work.
  void Shutdown();
  std::chrono::milliseconds lease_ttl() const { return options_.lease_ttl; }

 private:
  using Steady = std::chrono::steady_clock::time_point;
  struct SweepEntry {
    SweepRecord rec;
    std::vector<int64_t> trial_ids;  // expansion order
    int64_t counts[6] = {0, 0, 0, 0, 0, 0};  // by TrialState
  };
  struct TrialEntry {
    TrialRecord rec;
    std::vector<AttemptRecord> attempts;
    std::map<std::string, MetricRecord> last_metrics;
    std::optional<Steady> held_until;  // queued but waiting out its retry backoff (in held_)
  };
  struct LeaseEntry {
    std::string lease_id;
    int64_t trial_id = 0;
    int attempt = 0;
    int64_t token = 0;
    std::string worker_id;
    int rank = 0;
    Steady expires;
    bool delivered = false;
    int64_t progress_epoch = 0;  // from heartbeats
    double progress_fraction = 0;
    // (wall_ms, step) of the newest point stored per metric name for this attempt: a point not
    // newer is one the worker sent again because the reply to its first send was lost. Known
    // from the grant on; after a restart read from the store on the lease's first report.
    std::map<std::string, std::pair<int64_t, int64_t>> newest_point;
    bool newest_point_known = false;
    int master_port = 0;  // rank 0 of a multi-node attempt: its TCPStore port, once reported
  };
  struct WorkerEntry {
    WorkerRecord rec;
    Steady last_seen;
    std::set<std::string> leases;
    int used_gpus = 0;
    int used_cpu_slots = 0;
    std::vector<pb::WorkerCommand> commands;
  };

  Coordinator(Store* store, const Clock* clock, MetricsRegistry* registry,
              CoordinatorOptions options);
  absl::Status LoadLocked();
  absl::Status LoadPaperTables();
  // Writes `m`; on failure reloads the in-memory state from the store so both agree again.
  absl::Status CommitLocked(Mutation& m);
  int64_t NowMs() const;
  void AddEvent(Mutation& m, const TrialRecord& t, const std::string& message);
  void SetTrial(const TrialRecord& t);  // installs a record, keeping sweep counts right
  void AddLease(LeaseEntry lease);
  void DropLease(const std::string& lease_id);
  std::vector<WorkerView> WorkerViews(const std::string& requester, int reported_free_gpus,
                                      bool use_reported) const;
  // Ends the running attempt of `t`; re-queues the trial when `retry` and attempts remain.
  void EndAttemptLocked(TrialEntry& t, AttemptOutcome outcome, const std::string& reason,
                        bool retry, const std::string& reporting_lease, Mutation& m);
  absl::Status TickLocked();
  // A worker registering again under the name `fresh` has: its earlier leases end now
  // (server/worker_restart.cc).
  void ReleaseLeasesOfRestartedLocked(const WorkerRecord& fresh, Mutation& m);
  // How long `t`, queued after its last attempt ended, waits for its retry backoff; 0 = none.
  std::chrono::milliseconds RetryDelay(const TrialEntry& t) const;
  // Queues a trial for the scheduler now, or holds it back until `at` when that is later.
  void QueueLocked(const TrialRecord& t, Steady at);
  void UnholdLocked(TrialEntry& t);
  absl::StatusOr<LeaseEntry*> CheckLease(const pb::LeaseRef& ref);
  // The TCPStore port rank 0 of `l`'s attempt reported (0 = not yet).
  int RendezvousPortLocked(const LeaseEntry& l) const;
  pb::Lease LeaseMessage(const LeaseEntry& l, const TrialEntry& t) const;
  QueuedTrial QueuedOf(const TrialRecord& t) const;
  pb::Sweep SweepMessage(const SweepEntry& s, bool with_spec) const;
  pb::Trial TrialMessage(const TrialEntry& t) const;
  pb::Worker WorkerMessage(const WorkerEntry& w) const;
  std::string PendingReason(const TrialRecord& t) const;
  void CollectMetrics();
  // recipe.init_from: fp32 (server/init_from_gate.cc).
  void IndexInitDependenciesLocked(const SweepEntry& s);
  // Whether a trial the scheduler picked may be leased; if not it is parked or failed.
  bool InitGateOpenLocked(int64_t trial_id, Mutation& m);
  // After `source` ended: its parked dependents are queued again, or failed.
  void InitSourceEndedLocked(const TrialRecord& source, Mutation& m);
  void FailInitDependentLocked(TrialEntry& t, const std::string& reason, Mutation& m);
  std::string InitPendingReason(const TrialRecord& t) const;  // "" = not waiting on one
  void SetInitLeaseFields(const TrialEntry& t, pb::Lease& m) const;

  Store* const store_;
  const Clock* const clock_;
  const CoordinatorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable events_cv_;
  bool shutdown_ = false;
  std::map<int64_t, SweepEntry> sweeps_;
  std::unordered_map<int64_t, TrialEntry> trials_;
  std::unordered_map<std::string, LeaseEntry> leases_;
  std::set<std::pair<Steady, std::string>> expiry_;  // (expires, lease id)
  // Queued trials waiting out their retry backoff, not yet in the scheduler: (until, trial id).
  std::set<std::pair<Steady, int64_t>> held_;
  std::map<std::string, WorkerEntry> workers_;
  std::unique_ptr<Scheduler> scheduler_;
  InitDependencies init_deps_;
  std::set<int64_t> init_parked_;  // queued dependents held out of the scheduler for their source
  std::deque<EventRecord> recent_events_;  // newest last, bounded
  int64_t next_sweep_id_ = 1, next_trial_id_ = 1, next_token_ = 1, next_seq_ = 1;
  int64_t next_worker_ = 1;
  PaperTables paper_;
  PaperIndex paper_index_;  // of paper_
  struct TrialLog {
    std::deque<pb::LogLine> lines;
    int64_t next_seq = 1;
    int64_t dropped = 0;
  };
  std::unordered_map<int64_t, TrialLog> logs_;  // by trial id; not persisted

  CounterFamily* lease_expirations_;
  CounterFamily* attempts_total_;
  CounterFamily* points_ingested_;
  HistogramFamily* queue_wait_;
  HistogramFamily* trial_duration_;
  GaugeFamily* sweeps_gauge_;
  GaugeFamily* trials_gauge_;
  GaugeFamily* workers_gauge_;
  GaugeFamily* top1_gauge_;
  GaugeFamily* worker_images_gauge_;      // latest images/s a worker's trainer reported
  GaugeFamily* worker_data_wait_gauge_;   // latest data_wait_ms_per_step a worker's trainer reported
  GaugeFamily* worker_gpu_memory_gauge_;  // latest GPU memory in use a worker's trainer reported
};

}  // namespace wrpn::server
