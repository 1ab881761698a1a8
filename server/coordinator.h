#pragma once
// Coordinator: the service core behind both gRPC services and the HTTP JSON API. It keeps the
// lock and the state machine (sweeps, trials, attempts in memory; every state change written
// through the Store as one transaction) and delegates the pure parts to units named for them:
// LeaseTable (leases, expiry, slot accounting), WorkerRegistry, HeldTrials and RetryDelay
// (retry backoff), the Scheduler (whom to dispatch to), EventHistory (what WatchSweep streams),
// TrialLogs, the record <-> message converters (record_proto.h), PlanSweep (submission),
// metric ingestion (metric_ingest.h), InitDependencies (recipe.init_from: fp32) and
// CoordinatorMetrics. Requests and answers are the
// wrpn.v1 messages. coordinator.cc has the state changes, coordinator_reports.cc what workers
// report on a lease, coordinator_queries.cc the read-only calls, coordinator_load.cc restart
// recovery, worker_restart.cc the restarted-worker rule, coordinator_init_from.cc the holding of
// trials that start from an FP32 trial's checkpoint, coordinator_pareto.cc the rungs of
// Pareto-pruned sweeps (ParetoSweeps: stop at a rung, decide, promote or prune). A request is validated once, at the
// edge (server/validate.h, by the gRPC and HTTP handlers), and the core takes it as valid.
// Errors are absl::Status (converted to gRPC codes at the RPC edge). Thread-safe: one mutex serialises every operation; the state it guards
// is annotated. Time comes from the Clock seam; lease expiry happens in Tick(), which every
// worker call runs first and the server runs periodically.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/coordinator_metrics.h"
#include "server/event_history.h"
#include "server/init_dependencies.h"
#include "server/lease_table.h"
#include "server/metrics.h"
#include "server/paper_tables.h"
#include "server/pareto_sweeps.h"
#include "server/record_proto.h"
#include "server/retry_backoff.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "server/trial_logs.h"
#include "server/worker_registry.h"
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
  static constexpr int64_t kMaxLogLines = TrialLogs::kMaxLines;

  // Expires leases past their TTL (re-queueing or failing their trials) and marks silent workers
  // lost.
  absl::Status Tick();
  // Deletes events older than `retention`; returns how many.
  absl::StatusOr<int64_t> PruneEvents(std::chrono::hours retention);
  // Wakes and ends every WatchSweep; later calls still work.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  std::chrono::milliseconds lease_ttl() const { return options_.lease_ttl; }

 private:
  struct SweepEntry {
    SweepRecord rec;
    std::vector<int64_t> trial_ids;  // expansion order
    TrialCounts counts{};            // by TrialState
  };
  struct TrialEntry {
    TrialRecord rec;
    std::vector<AttemptRecord> attempts;
    std::map<std::string, MetricRecord> last_metrics;
  };

  Coordinator(Store* store, const Clock* clock, MetricsRegistry* registry,
              CoordinatorOptions options);
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadTrialsLocked(Snapshot& snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RestoreLeasesLocked(const AttemptRecord& a, SteadyTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<int> FirstFitSlotsLocked(const LeaseEntry& l, const TrialRecord& t) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequeueLoadedLocked(SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadPaperTables() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `m`; on failure reloads the in-memory state from the store so both agree again.
  absl::Status CommitLocked(Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMs() const;
  void AddEvent(Mutation& m, const TrialRecord& t, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Installs a record, keeping sweep counts right.
  void SetTrial(const TrialRecord& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the running attempt of `t`; re-queues the trial when `retry` and attempts remain.
  void EndAttemptLocked(TrialEntry& t, AttemptOutcome outcome, const std::string& reason,
                        bool retry, const std::string& reporting_lease, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the workers of the attempt's other leases to cancel or forget them; drops them all.
  void ReleaseAttemptLeasesLocked(const TrialEntry& t, const AttemptRecord& a,
                                  AttemptOutcome outcome, const std::string& reason,
                                  const std::string& reporting_lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLeasesLocked(SteadyTime now, Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker registering again under the name `fresh` has: its earlier leases end now
  // (server/worker_restart.cc).
  void ReleaseLeasesOfRestartedLocked(const WorkerRecord& fresh, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How long `t`, queued after its last attempt ended, waits for its retry backoff; 0 = none.
  std::chrono::milliseconds RetryDelayOf(const TrialEntry& t) const;
  // Queues a trial for the scheduler now, or holds it back until `at` when that is later.
  void QueueLocked(const TrialRecord& t, SteadyTime at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease `ref` names with its current token, renewed; its worker was heard from.
  absl::StatusOr<LeaseEntry*> CheckLease(const pb::LeaseRef& ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The registered worker `id`, else NOT_FOUND asking it to register again.
  absl::StatusOr<WorkerEntry*> FindWorkerLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  pb::Lease LeaseMessageLocked(const LeaseEntry& l, const TrialEntry& t) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `worker` the gang leases granted to it while it was not asking, within `free_gpus`.
  void DeliverWaitingLeasesLocked(const std::string& worker, int free_gpus,
                                  pb::AcquireTrialResponse& resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts an attempt of the assigned trial: its leases, the records and the event.
  void GrantLocked(const Assignment& a, SteadyTime now, int64_t now_ms, Mutation& m,
                   pb::AcquireTrialResponse& resp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  QueuedTrial QueuedOf(const TrialRecord& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  pb::Trial TrialMessageLocked(const TrialEntry& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  pb::Worker WorkerMessageLocked(const WorkerEntry& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PendingReason(const TrialRecord& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<SweepEntry*> FindSweepLocked(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TrialEntry*> FindTrialLocked(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits (up to 200 ms) for events after `after`, then the watched sweep's ones and its state.
  // False at shutdown. `done`: the sweep is finished.
  bool NextWatchBatch(int64_t sweep_id, int64_t* after, std::vector<pb::WatchSweepResponse>* out,
                      bool* done) ABSL_LOCKS_EXCLUDED(mu_);
  void CollectMetrics() ABSL_LOCKS_EXCLUDED(mu_);
  // recipe.init_from: fp32 (server/coordinator_init_from.cc).
  void IndexInitDependenciesLocked(const SweepEntry& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a trial the scheduler picked may be leased; if not it is parked or failed.
  bool InitGateOpenLocked(int64_t trial_id, Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After `source` ended: its parked dependents are queued again, or failed.
  void InitSourceEndedLocked(const TrialRecord& source, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailInitDependentLocked(TrialEntry& t, const std::string& reason, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // "" when `t` waits on no FP32 trial.
  std::string InitPendingReasonLocked(const TrialRecord& t) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The FP32 checkpoint `t` starts from, and whether others start from `t`'s.
  void SetInitLeaseFieldsLocked(const TrialEntry& t, LeaseContext& ctx) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // search.mode: pareto (server/coordinator_pareto.cc).
  std::vector<const TrialRecord*> SweepTrialsLocked(int64_t sweep_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // At load, after the trials: the decisions, every trial's top-1 at the rungs it reached (from
  // its stored top1 metric) and the parked trials; undecided rungs are evaluated at the next Tick.
  absl::Status LoadParetoLocked(const Snapshot& snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An interrupted attempt of a pareto sweep's trial that stopped at a rung: ends the attempt
  // (not counted against max_attempts), parks or re-queues the trial and evaluates the rung.
  // False (nothing done) when it is an ordinary interruption.
  bool ReachedRungLocked(TrialEntry& t, const std::string& reporting_lease, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides the rung when RungReady says so, or extends its decision with late reports, and
  // applies it to the parked trials (promoted: queued; pruned: ended).
  void EvaluateRungLocked(int64_t sweep_id, int rung, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyRungDecisionLocked(int64_t sweep_id, int rung, const RungDecision& d, Mutation& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tick: rungs whose quorum timeout has passed (and, after a load, every undecided one).
  void EvaluateDueRungsLocked(Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a trial the scheduler picked may be leased: not when it already stands at its rung
  // (it is parked instead).
  bool ParetoGateOpenLocked(int64_t trial_id, Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `t`'s top-1 after `epoch` epochs (its top1 metric at step epoch - 1), if it has one.
  absl::StatusOr<std::optional<MetricRecord>> RungTop1Locked(TrialEntry& t, int64_t epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RetrySweep --pruned: `t` (pruned) resumes to the end.
  void ResumePrunedLocked(TrialEntry& t, Mutation& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  const Clock* const clock_;
  const CoordinatorOptions options_;
  CoordinatorMetrics metrics_;

  mutable absl::Mutex mu_;
  absl::CondVar events_cv_;  // signalled when events are committed and at shutdown
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int64_t, SweepEntry> sweeps_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<int64_t, TrialEntry> trials_ ABSL_GUARDED_BY(mu_);
  LeaseTable leases_ ABSL_GUARDED_BY(mu_);
  HeldTrials held_ ABSL_GUARDED_BY(mu_);  // queued trials waiting out their retry backoff
  WorkerRegistry workers_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Scheduler> scheduler_ ABSL_GUARDED_BY(mu_);
  EventHistory events_ ABSL_GUARDED_BY(mu_);
  InitDependencies init_deps_ ABSL_GUARDED_BY(mu_);  // recipe.init_from: fp32
  ParetoSweeps pareto_ ABSL_GUARDED_BY(mu_);          // search.mode: pareto
  bool pareto_reevaluate_ ABSL_GUARDED_BY(mu_) = false;  // set at load: undecided rungs
  TrialLogs logs_ ABSL_GUARDED_BY(mu_);  // not persisted
  PaperTables paper_ ABSL_GUARDED_BY(mu_);
  PaperIndex paper_index_ ABSL_GUARDED_BY(mu_);  // of paper_
  int64_t next_sweep_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_trial_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace wrpn::server
