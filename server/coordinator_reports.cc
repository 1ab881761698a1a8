// What a worker reports on a live lease (Coordinator methods): metric points (deduplicated,
// server/metric_ingest.h), checkpoints, log lines and, for rank 0 of a gang, the rendezvous
// port. Each runs Tick first, checks and renews the lease, and holds the coordinator's mutex.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/coordinator.h"
#include "server/metric_ingest.h"

namespace wrpn::server {

absl::StatusOr<pb::ReportMetricsResponse> Coordinator::ReportMetrics(
    const pb::ReportMetricsRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  TrialEntry& t = trials_.at(l->trial_id);
  if (!l->newest_point_known) {  // loaded at a restart: what did this attempt store already?
    ASSIGN_OR_RETURN(std::vector<MetricRecord> stored, store_->Metrics(t.rec.id, ""));
    l->newest_point = NewestOfAttempt(stored, l->attempt);
    l->newest_point_known = true;
  }
  FreshPoints fresh =
      SelectFresh(req, l->newest_point, t.rec.id, l->attempt, t.rec.best_top1, NowMs());
  Mutation m;
  m.op = "metrics";
  m.metrics = std::move(fresh.records);
  if (fresh.best_top1 != t.rec.best_top1) {
    TrialRecord r = t.rec;
    r.best_top1 = fresh.best_top1;
    m.trials.push_back(r);
  }
  RETURN_IF_ERROR(CommitLocked(m));
  t.rec.best_top1 = fresh.best_top1;
  NoteRequest(l->newest_point, req);
  for (const MetricRecord& p : m.metrics) KeepLatest(t.last_metrics, p);
  metrics_.points_ingested->Inc({}, static_cast<double>(m.metrics.size()));
  const WorkerEntry* w = workers_.Find(l->worker_id);
  metrics_.RecordWorkerPoints(w != nullptr && !w->rec.name.empty() ? w->rec.name : l->worker_id,
                              req);
  pb::ReportMetricsResponse resp;
  resp.set_accepted(static_cast<int64_t>(m.metrics.size()));
  return resp;
}

absl::StatusOr<pb::ReportRendezvousResponse> Coordinator::ReportRendezvous(
    const pb::ReportRendezvousRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  const TrialEntry& t = trials_.at(l->trial_id);
  if (t.rec.nodes <= 1 || l->rank != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease '", l->lease_id, "' is not node rank 0 of a multi-node trial: it hosts no store"));
  }
  if (l->master_port != 0 && l->master_port != req.master_port()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease '", l->lease_id, "': rendezvous port already reported as ", l->master_port));
  }
  l->master_port = req.master_port();
  return pb::ReportRendezvousResponse();
}

absl::StatusOr<pb::ReportLogsResponse> Coordinator::ReportLogs(const pb::ReportLogsRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  const int64_t now = NowMs();
  for (const std::string& text : req.lines())
    logs_.Append(l->trial_id, l->attempt, req.rank(), text, now);
  pb::ReportLogsResponse resp;
  resp.set_accepted(req.lines_size());
  return resp;
}

absl::StatusOr<pb::ReportCheckpointResponse> Coordinator::ReportCheckpoint(
    const pb::ReportCheckpointRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  TrialEntry& t = trials_.at(l->trial_id);
  Mutation m;
  m.op = "checkpoint";
  TrialRecord r = t.rec;
  r.checkpoint_path = req.path();
  r.checkpoint_epoch = req.epoch();
  m.trials.push_back(r);
  m.checkpoints.push_back({r.id, l->attempt, req.epoch(), req.path(), NowMs()});
  RETURN_IF_ERROR(CommitLocked(m));
  t.rec = r;
  return pb::ReportCheckpointResponse();
}

}  // namespace wrpn::server
