// The client API's read-only calls (Coordinator methods): sweeps, trials with their live state
// (pending reason, progress), metrics, logs, workers, and WatchSweep's stream. Each reads the
// working set under the coordinator's mutex and changes nothing but the cached latest metrics.
// (GetGrid and GetPaperTables are in coordinator.cc, next to the paper tables they use.)
#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "server/coordinator.h"
#include "server/list_query.h"
#include "server/metric_ingest.h"
#include "server/trial_transitions.h"

namespace wrpn::server {

absl::StatusOr<pb::GetSweepResponse> Coordinator::GetSweep(const pb::GetSweepRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const SweepEntry* s, FindSweepLocked(req.sweep_id()));
  pb::GetSweepResponse resp;
  *resp.mutable_sweep() = SweepMessage(s->rec, s->counts, true);
  return resp;
}

absl::StatusOr<pb::ListSweepsResponse> Coordinator::ListSweeps(const pb::ListSweepsRequest& req) {
  const int page = PageSize(req.page_size());
  ASSIGN_OR_RETURN(int64_t from, PageStart(req.page_token()));
  absl::MutexLock lock(&mu_);
  pb::ListSweepsResponse resp;
  for (auto it = sweeps_.lower_bound(from); it != sweeps_.end(); ++it) {
    if (req.state() != pb::SWEEP_STATE_UNSPECIFIED &&
        SweepStateOf(it->second.rec, it->second.counts) != req.state())
      continue;
    if (resp.sweeps_size() == page) {
      resp.set_next_page_token(absl::StrCat(it->first));
      break;
    }
    *resp.add_sweeps() = SweepMessage(it->second.rec, it->second.counts, false);
  }
  return resp;
}

std::string Coordinator::PendingReason(const TrialRecord& t) const {
  if (t.state != TrialState::kQueued) return "";
  if (const auto until = held_.Until(t.id)) {
    const double s = std::chrono::duration<double>(*until - clock_->SteadyNow()).count();
    return absl::StrFormat("retry backoff after a failed attempt: leased again in %.0f s",
                           std::max(0.0, std::ceil(s)));
  }
  if (std::string why = pareto_.WaitReason(t.id); !why.empty()) return why;
  if (std::string why = InitPendingReasonLocked(t); !why.empty()) return why;
  std::string why = scheduler_->Unplaceable(QueuedOf(t), workers_.Views(leases_, "", 0, false));
  if (!why.empty()) return why;
  return "waiting for a free worker";
}

pb::Trial Coordinator::TrialMessageLocked(const TrialEntry& e) const {
  pb::Trial m = TrialMessage(e.rec);
  m.set_pending_reason(PendingReason(e.rec));
  if (e.rec.state == TrialState::kQueued || e.rec.state == TrialState::kRunning)
    m.set_stop_at_epoch(pareto_.StopEpoch(e.rec));
  if (e.rec.state == TrialState::kRunning && !e.attempts.empty() &&
      !e.attempts.back().lease_ids.empty()) {
    if (const LeaseEntry* l = leases_.Find(e.attempts.back().lease_ids[0])) {
      m.set_progress_epoch(l->progress_epoch);
      m.set_progress_fraction(l->progress_fraction);
    }
  }
  return m;
}

absl::StatusOr<pb::ListTrialsResponse> Coordinator::ListTrials(const pb::ListTrialsRequest& req) {
  const int page = PageSize(req.page_size());
  ASSIGN_OR_RETURN(int64_t from, PageStart(req.page_token()));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const SweepEntry* s, FindSweepLocked(req.sweep_id()));
  pb::ListTrialsResponse resp;
  const auto& ids = s->trial_ids;
  for (size_t i = static_cast<size_t>(from); i < ids.size(); ++i) {
    const TrialEntry& t = trials_.at(ids[i]);
    if (!TrialMatches(req, t.rec)) continue;
    if (resp.trials_size() == page) {
      resp.set_next_page_token(absl::StrCat(i));
      break;
    }
    *resp.add_trials() = TrialMessageLocked(t);
  }
  return resp;
}

absl::StatusOr<pb::GetTrialResponse> Coordinator::GetTrial(const pb::GetTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(TrialEntry* t, FindTrialLocked(req.trial_id()));
  pb::GetTrialResponse resp;
  *resp.mutable_trial() = TrialMessageLocked(*t);
  for (const AttemptRecord& a : t->attempts) *resp.add_attempts() = AttemptMessage(a);
  if (t->last_metrics.empty() && t->rec.attempts > 0) {
    // After a restart the latest values are rebuilt from the stored series.
    ASSIGN_OR_RETURN(std::vector<MetricRecord> points, store_->Metrics(t->rec.id, ""));
    for (const MetricRecord& p : points) KeepLatest(t->last_metrics, p);
  }
  for (const auto& [name, p] : t->last_metrics) *resp.add_last_metrics() = MetricValueMessage(p);
  return resp;
}

absl::StatusOr<pb::GetTrialMetricsResponse> Coordinator::GetTrialMetrics(
    const pb::GetTrialMetricsRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(FindTrialLocked(req.trial_id()).status());
  ASSIGN_OR_RETURN(auto points, store_->Metrics(req.trial_id(), req.name()));
  pb::GetTrialMetricsResponse resp;
  for (const MetricRecord& p : points) *resp.add_points() = MetricValueMessage(p);
  return resp;
}

pb::Worker Coordinator::WorkerMessageLocked(const WorkerEntry& w) const {
  std::set<int64_t> running;
  for (const std::string& id : leases_.LeasesOf(w.rec.id)) running.insert(leases_.Find(id)->trial_id);
  pb::Worker m = WorkerMessage(w.rec, leases_.UsedBy(w.rec.id), running);
  leases_.gpus().Describe(w.rec.id, &m);
  return m;
}

absl::StatusOr<pb::ListWorkersResponse> Coordinator::ListWorkers(const pb::ListWorkersRequest&) {
  absl::MutexLock lock(&mu_);
  pb::ListWorkersResponse resp;
  for (const auto& [id, w] : workers_.all()) *resp.add_workers() = WorkerMessageLocked(w);
  return resp;
}

absl::Status Coordinator::WatchSweep(const pb::WatchSweepRequest& req,
                                     const std::function<bool(const pb::WatchSweepResponse&)>& send,
                                     const std::function<bool()>& stop) {
  int64_t after = 0;
  pb::WatchSweepResponse first;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(const SweepEntry* s, FindSweepLocked(req.sweep_id()));
    *first.mutable_sweep() = SweepMessage(s->rec, s->counts, false);
    after = events_.LastSeq();
  }
  if (!send(first) || SweepFinished(first.sweep().state())) return absl::OkStatus();
  for (;;) {
    std::vector<pb::WatchSweepResponse> out;
    bool done = false;
    if (!NextWatchBatch(req.sweep_id(), &after, &out, &done)) return absl::OkStatus();
    for (const auto& r : out) {
      if (!send(r)) return absl::OkStatus();
    }
    if (done || stop()) return absl::OkStatus();
  }
}

bool Coordinator::NextWatchBatch(int64_t sweep_id, int64_t* after,
                                 std::vector<pb::WatchSweepResponse>* out, bool* done) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(200);
  while (!shutdown_ && !events_.HasAfter(*after)) {
    if (events_cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  if (shutdown_) return false;
  for (const EventRecord& e : events_.SweepEventsAfter(sweep_id, after)) {
    pb::WatchSweepResponse r;
    *r.mutable_event() = EventMessage(e);
    out->push_back(std::move(r));
  }
  const SweepEntry& s = sweeps_.at(sweep_id);
  const pb::Sweep now = SweepMessage(s.rec, s.counts, false);
  for (auto& r : *out) *r.mutable_sweep() = now;
  *done = SweepFinished(now.state());
  return true;
}

absl::StatusOr<pb::GetTrialLogsResponse> Coordinator::GetTrialLogs(
    const pb::GetTrialLogsRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const TrialEntry* t, FindTrialLocked(req.trial_id()));
  pb::GetTrialLogsResponse resp;
  resp.set_trial_finished(Terminal(t->rec.state));
  logs_.Read(req.trial_id(), req.after_seq(), req.limit(), &resp);
  return resp;
}

}  // namespace wrpn::server
