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
#include "server/grid_builder.h"
#include "server/paper_tables.h"
#include "server/sweep_submission.h"
#include "server/trial_transitions.h"
#include "server/validate.h"  // FailureKindOf

namespace wrpn::server {
namespace {

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
          t.gpus_per_node, t.nodes, t.gpu_share_units, t.gpu_memory_bytes};
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
  ASSIGN_OR_RETURN(const SweepSpec spec, ParseSpecOf(req));
  pb::SubmitSweepResponse resp;
  resp.set_trial_count(PlannedTrialCount(spec));
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
  IndexInitDependenciesLocked(se);
  pareto_.AddSweep(se.rec);
  resp.set_sweep_id(s.id);
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
      init_deps_.Unpark(id);
      pareto_.Unpark(id);
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
    if (t.rec.state == TrialState::kPruned && req.pruned()) {
      ResumePrunedLocked(t, m);
      ++n;
      continue;
    }
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
  SetInitLeaseFieldsLocked(t, ctx);
  ctx.stop_at_epoch = pareto_.StopEpoch(t.rec);
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
    if (!InitGateOpenLocked(a->trial_id, m) || !ParetoGateOpenLocked(a->trial_id, m)) continue;
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
  StartedAttempt started = StartAttempt(t.rec, next_token_++, a.worker_ids, now_ms);
  started.attempt.gpu_slots = a.gpu_slots;
  const TrialRecord& r = started.trial;
  metrics_.queue_wait->Observe({}, std::max<double>(0, (now_ms - r.queued_ms) / 1000.0));
  SetTrial(r);
  t.attempts.push_back(started.attempt);
  m.trials.push_back(r);
  m.attempts.push_back(started.attempt);
  AddEvent(m, r, AttemptStartedMessage(started.attempt));
  m.op = "lease_grant";
  for (LeaseEntry& l : AttemptLeases(started.attempt, r, now + options_.lease_ttl)) {
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
    if (kind == FailureKind::kInterrupted && pareto_.IsPareto(t.rec.sweep_id) &&
        ReachedRungLocked(t, lease_id, m)) {
      RETURN_IF_ERROR(CommitLocked(m));
      return pb::CompleteTrialResponse();
    }
    if (!FailureCountsAsAttempt(kind)) ++t.rec.retry_base;  // the worker's fault, not the trial's
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
  if (Terminal(r.state)) InitSourceEndedLocked(r, m);
  // A failed trial no longer holds its rung back.
  if (r.state == TrialState::kFailed && pareto_.IsPareto(r.sweep_id))
    EvaluateRungLocked(r.sweep_id, pareto_.TargetRung(r), m);
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
  EvaluateDueRungsLocked(m);
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
  for (const auto& [id, w] : workers_.all()) {
    gauges.AddWorker(w.rec);
    gauges.AddWorkerGpus(w.rec, leases_.gpus());
  }
  gauges.PublishTo(metrics_);
}

}  // namespace wrpn::server
