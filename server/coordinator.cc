#include "server/coordinator.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/best_top1.h"
#include "common/status.h"
#include "common/sweep_spec.h"
#include "common/trainer_protocol.h"
#include "server/metric_ingest.h"
#include "server/grid_builder.h"
#include "server/list_query.h"
#include "server/paper_tables.h"
#include "server/sweep_submission.h"
#include "server/trial_transitions.h"
#include "server/validate.h"  // FailureKindOf
#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

using nlohmann::json;

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

Coordinator::Coordinator(Store* store, const Clock* clock, MetricsRegistry* registry,
                         CoordinatorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), metrics_(registry),
      scheduler_(std::make_unique<PriorityScheduler>()) {
  registry->AddCollectHook([this] { CollectMetrics(); });
}

Coordinator::~Coordinator() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(Store* store, const Clock* clock,
                                                                  MetricsRegistry* registry,
                                                                  CoordinatorOptions options) {
  if (options.lease_ttl <= std::chrono::milliseconds(0)) {
    return absl::InvalidArgumentError("lease TTL must be positive");
  }
  std::unique_ptr<Coordinator> c(new Coordinator(store, clock, registry, std::move(options)));
  absl::MutexLock lock(&c->mu_);
  RETURN_IF_ERROR(c->LoadPaperTables());
  RETURN_IF_ERROR(c->LoadLocked());
  return c;
}

absl::Status Coordinator::LoadPaperTables() {
  if (!options_.paper_tables_path.empty()) {
    std::ifstream in(options_.paper_tables_path);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read paper tables '", options_.paper_tables_path, "'"));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = ParsePaperTables(ss.str());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(options_.paper_tables_path, ": ", parsed.status().message()));
    }
    RETURN_IF_ERROR(store_->PutPaperTables(*parsed));
  }
  ASSIGN_OR_RETURN(paper_, store_->GetPaperTables());
  paper_index_ = PaperIndex(paper_);
  return absl::OkStatus();
}


absl::Status Coordinator::LoadLocked() {
  ASSIGN_OR_RETURN(Snapshot snap, store_->Load());
  sweeps_.clear();
  trials_.clear();
  leases_.Clear();
  held_.Clear();
  scheduler_ = std::make_unique<PriorityScheduler>();
  const SteadyTime now = clock_->SteadyNow();
  workers_.Load(std::move(snap.workers), now);  // silent workers get a full TTL from the restart
  LoadTrialsLocked(snap);
  for (auto& a : snap.attempts) {
    next_token_ = std::max(next_token_, a.fencing_token + 1);
    auto it = trials_.find(a.trial_id);
    if (it == trials_.end()) continue;
    if (a.outcome == AttemptOutcome::kRunning && it->second.rec.state == TrialState::kRunning)
      RestoreLeasesLocked(a, now);
    it->second.attempts.push_back(std::move(a));
  }
  RequeueLoadedLocked(now);
  events_.ContinueAfter(snap.max_event_seq);
  return absl::OkStatus();
}

void Coordinator::LoadTrialsLocked(Snapshot& snap) {
  for (auto& s : snap.sweeps) {
    next_sweep_id_ = std::max(next_sweep_id_, s.id + 1);
    sweeps_[s.id].rec = std::move(s);
  }
  for (auto& t : snap.trials) {
    next_trial_id_ = std::max(next_trial_id_, t.id + 1);
    auto sit = sweeps_.find(t.sweep_id);
    if (sit == sweeps_.end()) continue;  // foreign keys make this impossible
    sit->second.trial_ids.push_back(t.id);
    sit->second.counts[static_cast<int>(t.state)]++;
    TrialEntry& e = trials_[t.id];
    e.rec = std::move(t);
  }
}

// Leases that were live at the restart get their full TTL again from now.
void Coordinator::RestoreLeasesLocked(const AttemptRecord& a, SteadyTime now) {
  const int gpus = trials_.at(a.trial_id).rec.gpus_per_node;
  for (LeaseEntry& l : AttemptLeases(a, gpus, now + options_.lease_ttl)) {
    l.delivered = true;
    leases_.Add(std::move(l));
  }
}

void Coordinator::RequeueLoadedLocked(SteadyTime now) {
  const int64_t now_ms = NowMs();
  for (auto& [id, t] : trials_) {
    if (t.rec.state != TrialState::kQueued) continue;
    // A backoff that was running at the restart runs on from the failed attempt's end.
    const int64_t left_ms =
        t.attempts.empty() ? 0 : t.attempts.back().ended_ms + RetryDelayOf(t).count() - now_ms;
    QueueLocked(t.rec, now + std::chrono::milliseconds(std::max<int64_t>(0, left_ms)));
  }
}

int64_t Coordinator::NowMs() const { return ToMs(clock_->Now()); }

absl::Status Coordinator::CommitLocked(Mutation& m) {
  absl::Status st = store_->Apply(m);
  if (!st.ok()) {
    absl::Status reload = LoadLocked();
    if (!reload.ok()) {
      return absl::InternalError(absl::StrCat(st.message(), "; reloading state also failed: ",
                                              reload.message()));
    }
    return st;
  }
  const bool any_events = !m.events.empty();
  events_.Append(std::move(m.events));
  if (any_events) events_cv_.SignalAll();
  return absl::OkStatus();
}

void Coordinator::AddEvent(Mutation& m, const TrialRecord& t, const std::string& message) {
  m.events.push_back({events_.NextSeq(), NowMs(), t.sweep_id, t.id, static_cast<int>(t.state),
                      t.attempts, message});
}

void Coordinator::SetTrial(const TrialRecord& t) {
  TrialEntry& e = trials_[t.id];
  auto& counts = sweeps_[t.sweep_id].counts;
  if (e.rec.id == t.id) counts[static_cast<int>(e.rec.state)]--;
  counts[static_cast<int>(t.state)]++;
  e.rec = t;
}

QueuedTrial Coordinator::QueuedOf(const TrialRecord& t) const {
  auto sit = sweeps_.find(t.sweep_id);
  return {t.id, sit == sweeps_.end() ? 0 : sit->second.rec.priority, t.sweep_id, t.index,
          t.gpus_per_node, t.nodes};
}

std::string Coordinator::PendingReason(const TrialRecord& t) const {
  if (t.state != TrialState::kQueued) return "";
  if (const auto until = held_.Until(t.id)) {
    const double s = std::chrono::duration<double>(*until - clock_->SteadyNow()).count();
    return absl::StrFormat("retry backoff after a failed attempt: leased again in %.0f s",
                           std::max(0.0, std::ceil(s)));
  }
  std::string why = scheduler_->Unplaceable(QueuedOf(t), workers_.Views(leases_, "", 0, false));
  if (!why.empty()) return why;
  return "waiting for a free worker";
}

absl::StatusOr<Coordinator::SweepEntry*> Coordinator::FindSweepLocked(int64_t id) {
  auto it = sweeps_.find(id);
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", id));
  return &it->second;
}

absl::StatusOr<Coordinator::TrialEntry*> Coordinator::FindTrialLocked(int64_t id) {
  auto it = trials_.find(id);
  if (it == trials_.end()) return absl::NotFoundError(absl::StrCat("trial ", id));
  return &it->second;
}

absl::StatusOr<WorkerEntry*> Coordinator::FindWorkerLocked(const std::string& id) {
  WorkerEntry* w = workers_.Find(id);
  if (w == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("worker '", id, "' is not registered; register again"));
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Client API

absl::StatusOr<pb::SubmitSweepResponse> Coordinator::SubmitSweep(
    const pb::SubmitSweepRequest& req) {
  ASSIGN_OR_RETURN(const SweepSpec spec, SpecOf(req));
  pb::SubmitSweepResponse resp;
  resp.set_trial_count(CountTrials(spec));
  if (req.dry_run()) return resp;

  // Expansion, configs and costs are computed before taking the lock: a 100,000-trial sweep
  // must not stall heartbeats for long.
  PlannedSweep plan = PlanSweep(spec);
  SweepRecord& s = plan.sweep;
  Mutation m;
  m.op = "submit";
  m.trials = std::move(plan.trials);

  absl::MutexLock lock(&mu_);
  const int64_t now = NowMs();
  s.id = next_sweep_id_;
  s.created_ms = now;
  m.sweeps.push_back(s);
  for (size_t i = 0; i < m.trials.size(); ++i) {
    m.trials[i].id = next_trial_id_ + static_cast<int64_t>(i);
    m.trials[i].sweep_id = s.id;
    m.trials[i].queued_ms = now;
  }
  m.events.push_back({events_.NextSeq(), now, s.id, 0, 0, 0,
                      absl::StrCat("sweep '", s.name, "' submitted with ", m.trials.size(),
                                   " trials")});
  RETURN_IF_ERROR(CommitLocked(m));
  next_sweep_id_++;
  next_trial_id_ += static_cast<int64_t>(m.trials.size());
  SweepEntry& se = sweeps_[s.id];
  se.rec = s;
  se.trial_ids.reserve(m.trials.size());
  for (const TrialRecord& t : m.trials) {
    se.trial_ids.push_back(t.id);
    SetTrial(t);
    scheduler_->Enqueue(QueuedOf(t));
  }
  resp.set_sweep_id(s.id);
  return resp;
}

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

absl::StatusOr<pb::CancelSweepResponse> Coordinator::CancelSweep(
    const pb::CancelSweepRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(SweepEntry* se, FindSweepLocked(req.sweep_id()));
  Mutation m;
  m.op = "cancel";
  SweepRecord s = se->rec;
  s.cancelled = true;
  m.sweeps.push_back(s);
  int64_t n = 0;
  for (int64_t id : se->trial_ids) {
    TrialEntry& t = trials_[id];
    if (t.rec.state == TrialState::kQueued) {
      const TrialRecord r = CancelledWhileQueued(t.rec, NowMs());
      scheduler_->Remove(id);
      held_.Release(id);
      SetTrial(r);
      m.trials.push_back(r);
      AddEvent(m, r, "cancelled");
      ++n;
    } else if (t.rec.state == TrialState::kRunning) {
      EndAttemptLocked(t, AttemptOutcome::kCancelled, "sweep cancelled", false, "", m);
      ++n;
    }
  }
  se->rec = s;
  RETURN_IF_ERROR(CommitLocked(m));
  pb::CancelSweepResponse resp;
  resp.set_cancelled_trials(n);
  return resp;
}

absl::StatusOr<pb::RetrySweepResponse> Coordinator::RetrySweep(const pb::RetrySweepRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(SweepEntry* se, FindSweepLocked(req.sweep_id()));
  Mutation m;
  m.op = "retry";
  SweepRecord s = se->rec;
  s.cancelled = false;
  m.sweeps.push_back(s);
  int64_t n = 0;
  for (int64_t id : se->trial_ids) {
    TrialEntry& t = trials_[id];
    if (t.rec.state != TrialState::kFailed && t.rec.state != TrialState::kCancelled) continue;
    const TrialRecord r = RequeuedByRetry(t.rec, NowMs());
    SetTrial(r);
    scheduler_->Enqueue(QueuedOf(r));
    m.trials.push_back(r);
    AddEvent(m, r, "re-queued by retry");
    ++n;
  }
  se->rec = s;
  RETURN_IF_ERROR(CommitLocked(m));
  pb::RetrySweepResponse resp;
  resp.set_requeued_trials(n);
  return resp;
}

pb::Trial Coordinator::TrialMessageLocked(const TrialEntry& e) const {
  pb::Trial m = TrialMessage(e.rec);
  m.set_pending_reason(PendingReason(e.rec));
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

absl::StatusOr<pb::GetGridResponse> Coordinator::GetGrid(const pb::GetGridRequest& req) {
  ASSIGN_OR_RETURN(const PaperRef ref, ParsePaperRef(req.paper_ref()));
  absl::MutexLock lock(&mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  std::vector<const TrialRecord*> trials;
  trials.reserve(it->second.trial_ids.size());
  for (int64_t id : it->second.trial_ids) trials.push_back(&trials_.at(id).rec);
  return BuildGrid(req.sweep_id(), trials, paper_index_, ref);
}

absl::StatusOr<pb::GetPaperTablesResponse> Coordinator::GetPaperTables(
    const pb::GetPaperTablesRequest&) {
  absl::MutexLock lock(&mu_);
  return PaperTablesMessage(paper_);
}

pb::Worker Coordinator::WorkerMessageLocked(const WorkerEntry& w) const {
  std::set<int64_t> running;
  for (const std::string& id : leases_.LeasesOf(w.rec.id)) running.insert(leases_.Find(id)->trial_id);
  return WorkerMessage(w.rec, leases_.UsedBy(w.rec.id), running);
}

absl::StatusOr<pb::ListWorkersResponse> Coordinator::ListWorkers(const pb::ListWorkersRequest&) {
  absl::MutexLock lock(&mu_);
  pb::ListWorkersResponse resp;
  for (const auto& [id, w] : workers_.all()) *resp.add_workers() = WorkerMessageLocked(w);
  return resp;
}

absl::StatusOr<pb::DrainWorkerResponse> Coordinator::DrainWorker(
    const pb::DrainWorkerRequest& req) {
  absl::MutexLock lock(&mu_);
  WorkerEntry* e = workers_.Find(req.worker_id());
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("worker '", req.worker_id(), "'"));
  Mutation m;
  m.op = "drain";
  WorkerRecord w = e->rec;
  w.draining = req.drain();
  m.workers.push_back(w);
  RETURN_IF_ERROR(CommitLocked(m));
  e->rec = w;
  pb::DrainWorkerResponse resp;
  *resp.mutable_worker() = WorkerMessageLocked(*e);
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

// ---------------------------------------------------------------------------------------------
// Worker API

absl::StatusOr<pb::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const pb::RegisterWorkerRequest& req) {
  absl::MutexLock lock(&mu_);
  WorkerRecord w = WorkerRecordOf(req);
  w.id = workers_.NewId();
  w.registered_ms = w.last_heartbeat_ms = NowMs();
  Mutation m;
  m.op = "register";
  m.workers.push_back(w);
  ReleaseLeasesOfRestartedLocked(w, m);
  RETURN_IF_ERROR(CommitLocked(m));
  workers_.Put(w, clock_->SteadyNow());
  pb::RegisterWorkerResponse resp;
  resp.set_worker_id(w.id);
  resp.set_lease_ttl_ms(options_.lease_ttl.count());
  resp.set_heartbeat_interval_ms(std::max<int64_t>(1, options_.lease_ttl.count() / 3));
  return resp;
}

absl::StatusOr<pb::HeartbeatResponse> Coordinator::Heartbeat(const pb::HeartbeatRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(WorkerEntry * w, FindWorkerLocked(req.worker_id()));
  const SteadyTime now = clock_->SteadyNow();
  if (workers_.Touch(*w, now, NowMs())) {
    Mutation m;
    m.op = "heartbeat";
    m.workers.push_back(w->rec);
    RETURN_IF_ERROR(CommitLocked(m));
  }
  pb::HeartbeatResponse resp;
  resp.set_lease_ttl_ms(options_.lease_ttl.count());
  const std::set<std::string> told = workers_.TakeCommands(*w, resp.mutable_commands());
  for (const pb::LeaseProgress& p : req.leases()) {
    LeaseEntry* l = leases_.FindHeld(p.lease(), req.worker_id());
    if (l == nullptr) {
      if (told.count(p.lease().lease_id())) continue;  // a queued command already covers it
      *resp.add_commands() =
          LeaseCommand(pb::WorkerCommand::FORGET_LEASE, p.lease(), 0,
                       "lease is no longer valid (expired, superseded or finished)");
      continue;
    }
    leases_.Renew(*l, now + options_.lease_ttl);
    l->progress_epoch = p.epoch();
    l->progress_fraction = std::clamp(p.fraction(), 0.0, 1.0);
  }
  if (w->rec.draining) resp.add_commands()->set_kind(pb::WorkerCommand::DRAIN);
  return resp;
}

pb::Lease Coordinator::LeaseMessageLocked(const LeaseEntry& l, const TrialEntry& t) const {
  const AttemptRecord& a = t.attempts.back();
  LeaseContext ctx{t.rec, a};
  ctx.lease_ttl_ms = options_.lease_ttl.count();
  if (t.rec.nodes > 1) {
    ctx.master_addr = workers_.RendezvousAddress(a.worker_ids[0]);
    const LeaseEntry* rank0 = leases_.Find(a.lease_ids[0]);
    ctx.master_port = rank0 == nullptr ? 0 : rank0->master_port;
  }
  return LeaseMessage(l, ctx);
}

absl::StatusOr<pb::AcquireTrialResponse> Coordinator::AcquireTrial(
    const pb::AcquireTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(WorkerEntry * w, FindWorkerLocked(req.worker_id()));
  const SteadyTime now = clock_->SteadyNow();
  Mutation m;
  m.op = "acquire";
  if (workers_.Touch(*w, now, NowMs())) m.workers.push_back(w->rec);
  const int want = req.max_trials() == 0 ? 1 : req.max_trials();
  pb::AcquireTrialResponse resp;
  DeliverWaitingLeasesLocked(req.worker_id(), req.free_gpus(), resp);
  if (w->rec.draining) return resp;
  const int64_t now_ms = NowMs();
  const bool has_gpus = !w->rec.gpus.empty();
  while (resp.leases_size() < want) {
    auto a = scheduler_->Next(req.worker_id(),
                              workers_.Views(leases_, req.worker_id(), req.free_gpus(), has_gpus));
    if (!a) break;
    GrantLocked(*a, now, now_ms, m, resp);
  }
  RETURN_IF_ERROR(CommitLocked(m));
  return resp;
}

// Gang leases granted while this worker was not asking come first, once the worker says it has
// the GPUs free (its previous attempt's ranks may still be exiting); until then they wait, and
// their TTL still runs.
void Coordinator::DeliverWaitingLeasesLocked(const std::string& worker, int free_gpus,
                                             pb::AcquireTrialResponse& resp) {
  for (const std::string& id : leases_.LeasesOf(worker)) {
    LeaseEntry& l = *leases_.Find(id);
    if (l.delivered) continue;
    const TrialEntry& t = trials_.at(l.trial_id);
    // Rank 0 has not reported its port yet.
    if (l.rank > 0 && leases_.RendezvousPort(l, t.attempts.back()) == 0) continue;
    if (t.rec.gpus_per_node > free_gpus) continue;
    free_gpus -= t.rec.gpus_per_node;
    l.delivered = true;
    *resp.add_leases() = LeaseMessageLocked(l, t);
  }
}

void Coordinator::GrantLocked(const Assignment& a, SteadyTime now, int64_t now_ms, Mutation& m,
                              pb::AcquireTrialResponse& resp) {
  TrialEntry& t = trials_.at(a.trial_id);
  const StartedAttempt started = StartAttempt(t.rec, next_token_++, a.worker_ids, now_ms);
  const TrialRecord& r = started.trial;
  metrics_.queue_wait->Observe({}, std::max<double>(0, (now_ms - r.queued_ms) / 1000.0));
  SetTrial(r);
  t.attempts.push_back(started.attempt);
  m.trials.push_back(r);
  m.attempts.push_back(started.attempt);
  AddEvent(m, r, AttemptStartedMessage(started.attempt));
  m.op = "lease_grant";
  for (LeaseEntry& l : AttemptLeases(started.attempt, r.gpus_per_node, now + options_.lease_ttl)) {
    l.delivered = l.rank == 0;
    l.newest_point_known = true;  // a new attempt has stored nothing
    if (l.rank == 0) *resp.add_leases() = LeaseMessageLocked(l, t);
    leases_.Add(std::move(l));
  }
}

absl::StatusOr<LeaseEntry*> Coordinator::CheckLease(const pb::LeaseRef& ref) {
  ASSIGN_OR_RETURN(LeaseEntry * l, leases_.Check(ref));
  // Any call carrying a valid lease renews it.
  const SteadyTime now = clock_->SteadyNow();
  leases_.Renew(*l, now + options_.lease_ttl);
  if (WorkerEntry* w = workers_.Find(l->worker_id)) w->last_seen = now;
  return l;
}

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

absl::StatusOr<pb::GetTrialLogsResponse> Coordinator::GetTrialLogs(
    const pb::GetTrialLogsRequest& req) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const TrialEntry* t, FindTrialLocked(req.trial_id()));
  pb::GetTrialLogsResponse resp;
  resp.set_trial_finished(Terminal(t->rec.state));
  logs_.Read(req.trial_id(), req.after_seq(), req.limit(), &resp);
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

absl::StatusOr<pb::CompleteTrialResponse> Coordinator::CompleteTrial(
    const pb::CompleteTrialRequest& req) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  const std::string lease_id = l->lease_id;
  TrialEntry& t = trials_.at(l->trial_id);
  Mutation m;
  m.op = "complete";
  if (req.has_result()) {
    const pb::TrialResult& res = req.result();
    TrialRecord& r = t.rec;  // EndAttemptLocked copies it; set the result fields first
    r.final_top1 = res.top1();
    r.final_top5 = res.top5();
    r.images_per_sec = res.images_per_sec();
    r.best_top1 = BestTop1(r.best_top1, res.top1());
    EndAttemptLocked(t, AttemptOutcome::kSucceeded, "", false, lease_id, m);
  } else {
    const pb::TrialFailure& f = req.failure();
    const FailureKind kind = FailureKindOf(f);
    const std::string reason =
        f.reason().empty() ? "trial failed (no reason given)" : f.reason();
    t.attempts.back().failure_kind = kind;  // EndAttemptLocked copies the attempt
    EndAttemptLocked(t, AttemptOutcome::kFailed,
                     absl::StrCat(FailureKindName(kind), ": ", reason), FailureIsRetried(kind),
                     lease_id, m);
  }
  RETURN_IF_ERROR(CommitLocked(m));  // on failure the state is reloaded from the store
  return pb::CompleteTrialResponse();
}

void Coordinator::EndAttemptLocked(TrialEntry& t, AttemptOutcome outcome,
                                   const std::string& reason, bool retry,
                                   const std::string& reporting_lease, Mutation& m) {
  const int64_t now_ms = NowMs();
  AttemptRecord& a = t.attempts.back();
  a.outcome = outcome;
  a.ended_ms = now_ms;
  a.reason = reason;
  m.attempts.push_back(a);
  metrics_.attempts_total->Inc({AttemptOutcomeName(outcome)});
  if (outcome == AttemptOutcome::kSucceeded) {
    metrics_.trial_duration->Observe({}, std::max<double>(0, (now_ms - a.started_ms) / 1000.0));
  }
  ReleaseAttemptLeasesLocked(t, a, outcome, reason, reporting_lease);
  const TrialRecord r = AfterAttempt(t.rec, outcome, reason, retry,
                                     sweeps_.at(t.rec.sweep_id).rec.max_attempts, now_ms);
  SetTrial(r);
  const bool requeued = r.state == TrialState::kQueued;
  const std::chrono::milliseconds delay = requeued ? RetryDelayOf(t) : std::chrono::milliseconds(0);
  if (requeued) QueueLocked(r, clock_->SteadyNow() + delay);
  m.trials.push_back(r);
  AddEvent(m, r, AttemptEndedMessage(a, reason, requeued, delay));
}

void Coordinator::ReleaseAttemptLeasesLocked(const TrialEntry& t, const AttemptRecord& a,
                                             AttemptOutcome outcome, const std::string& reason,
                                             const std::string& reporting_lease) {
  for (const std::string& id : a.lease_ids) {
    const LeaseEntry* l = leases_.Find(id);
    if (l == nullptr) continue;
    WorkerEntry* w = workers_.Find(l->worker_id);
    if (id != reporting_lease && w != nullptr && !w->rec.lost) {
      pb::LeaseRef ref;
      ref.set_lease_id(id);
      ref.set_fencing_token(l->token);
      w->commands.push_back(LeaseCommand(outcome == AttemptOutcome::kCancelled
                                             ? pb::WorkerCommand::CANCEL_TRIAL
                                             : pb::WorkerCommand::FORGET_LEASE,
                                         ref, t.rec.id, reason.empty() ? "attempt ended" : reason));
    }
    leases_.Drop(id);
  }
}

absl::Status Coordinator::Tick() {
  absl::MutexLock lock(&mu_);
  return TickLocked();
}

std::chrono::milliseconds Coordinator::RetryDelayOf(const TrialEntry& t) const {
  return RetryDelay(t.attempts, RetryBackoff{options_.retry_backoff, options_.retry_backoff_max});
}

void Coordinator::QueueLocked(const TrialRecord& t, SteadyTime at) {
  held_.Release(t.id);
  if (at <= clock_->SteadyNow()) {
    scheduler_->Enqueue(QueuedOf(t));
    return;
  }
  held_.Hold(t.id, at);
}

absl::Status Coordinator::TickLocked() {
  const SteadyTime now = clock_->SteadyNow();
  // Held trials are queued (cancelling one releases its hold): their backoff is over.
  for (int64_t id : held_.TakeDue(now)) scheduler_->Enqueue(QueuedOf(trials_.at(id).rec));
  Mutation m;
  m.op = "tick";
  ExpireLeasesLocked(now, m);
  for (WorkerRecord& w : workers_.MarkSilentLost(now, options_.lease_ttl))
    m.workers.push_back(std::move(w));
  if (m.empty()) return absl::OkStatus();
  return CommitLocked(m);
}

void Coordinator::ExpireLeasesLocked(SteadyTime now, Mutation& m) {
  while (const LeaseEntry* first = leases_.FirstExpired(now)) {
    const LeaseEntry l = *first;  // ending the attempt drops it
    metrics_.lease_expirations->Inc();
    EndAttemptLocked(trials_.at(l.trial_id), AttemptOutcome::kExpired,
                     absl::StrCat("lease ", l.lease_id, " on worker ", l.worker_id,
                                  " expired (no heartbeat for ", options_.lease_ttl.count(),
                                  " ms)"),
                     true, "", m);
  }
}

absl::StatusOr<int64_t> Coordinator::PruneEvents(std::chrono::hours retention) {
  absl::MutexLock lock(&mu_);
  return store_->PruneEvents(NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(
                                           retention).count());
}

void Coordinator::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  events_cv_.SignalAll();
}

void Coordinator::CollectMetrics() {
  absl::MutexLock lock(&mu_);
  StateGauges gauges;
  for (const auto& [id, s] : sweeps_) {
    gauges.AddSweep(s.rec, s.counts);
    if (s.counts[static_cast<int>(TrialState::kSucceeded)] == 0) continue;
    for (int64_t tid : s.trial_ids) gauges.AddTrial(trials_.at(tid).rec);
  }
  for (const auto& [id, w] : workers_.all()) gauges.AddWorker(w.rec);
  gauges.PublishTo(metrics_);
}

}  // namespace wrpn::server
