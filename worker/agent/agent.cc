#include "worker/agent/agent.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/agent/attempt_folders.h"
#include "worker/agent/attempt_run.h"
#include "worker/agent/tcp_ports.h"

namespace wrpn::agent {

namespace fs = std::filesystem;

namespace {

void Log(const std::string& msg) {
  std::time_t t = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::cerr << stamp << " wrpn-worker: " << msg << std::endl;
}

int64_t WallMs(const Clock* clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock->Now().time_since_epoch())
      .count();
}

}  // namespace

std::string DescribeLease(const pb::Lease& lease) {
  return absl::StrCat("trial ", lease.trial_id(), " attempt ", lease.attempt(), " (lease ",
                      lease.lease_id(), ")");
}


Agent::Agent(CoordinatorClient* client, ProcessLauncher* launcher, const Clock* clock,
             AgentOptions options)
    : client_(client), launcher_(launcher), clock_(clock), options_(std::move(options)) {
  checkpoint_root_ = CheckpointRoot(options_);
  gpu_slots_ = GpuSlots(options_.gpus.size());
}

Agent::~Agent() {
  for (auto& r : runs_) {
    for (auto& p : r->procs) {
      if (p) p->Kill();
    }
  }
}

int Agent::FreeGpus() const {
  return gpu_slots_.Idle();
}

int Agent::FreeCpuSlots() const {
  int used = 0;
  for (const auto& r : runs_) {
    if (r->lease.gpus_per_node() == 0 && r->lease.gpu_share() == 0) ++used;
  }
  return std::max(0, options_.max_cpu_trials - used);
}

void Agent::LogThrottled(const std::string& msg) {
  const Steady now = clock_->SteadyNow();
  auto it = last_logged_.find(msg);
  if (it != last_logged_.end() && now - it->second < std::chrono::seconds(10)) return;
  if (last_logged_.size() > 100) last_logged_.clear();
  last_logged_[msg] = now;
  Log(msg);
}

void Agent::Register() {
  auto resp = client_->RegisterWorker(RegisterRequest(options_));
  if (!resp.ok()) {
    LogThrottled(absl::StrCat("register: ", resp.status().message(), "; retrying"));
    next_register_ = clock_->SteadyNow() + options_.register_retry;
    return;
  }
  worker_id_ = resp->worker_id();
  heartbeat_interval_ = std::chrono::milliseconds(
      std::max<int64_t>(1, resp->heartbeat_interval_ms() > 0 ? resp->heartbeat_interval_ms()
                                                             : resp->lease_ttl_ms() / 3));
  next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  next_acquire_ = clock_->SteadyNow();
  Log(absl::StrCat("registered as ", worker_id_, " (", options_.name, ", ", options_.gpus.size(),
                   " GPUs, ", options_.cpus, " CPUs); heartbeat every ",
                   heartbeat_interval_.count(), " ms"));
}

void Agent::Step() {
  const Steady now = clock_->SteadyNow();
  if (drain_requested_.load() && !drain_applied_) {
    drain_applied_ = true;
    draining_ = true;
    Log("draining: acquiring nothing new, interrupting running trials");
    for (auto& r : runs_) {
      if (!r->done && r->Running() && r->stop == StopKind::kNone)
        RequestStop(*r, StopKind::kDrain, "worker shutting down");
    }
  }
  // Trainers are supervised and their reports (which carry leases, not the worker id) go on
  // even while (re-)registration fails.
  if (!registered() && (!next_register_ || now >= *next_register_)) Register();
  if (!next_cleanup_ || now >= *next_cleanup_) {
    CleanUp();
    next_cleanup_ = now + std::chrono::hours(1);
  }
  for (auto& r : runs_) Poll(*r);
  for (auto& r : runs_) {
    if (r->done) continue;
    if (r->term_sent && !r->killed && clock_->SteadyNow() - *r->term_sent >= options_.grace) {
      Note(*r, absl::StrCat("no exit ", options_.grace.count(), " ms after SIGTERM: SIGKILL\n"));
      Log(absl::StrCat(DescribeLease(r->lease), ": grace period over, sending SIGKILL"));
      r->Signal(&Process::Kill);
      r->killed = true;
    }
    FlushMetrics(*r, false);
    FlushCheckpoint(*r);
    FlushLogs(*r, false);
    if (r->completion) TryComplete(*r);
  }
  if (registered() && next_heartbeat_ && clock_->SteadyNow() >= *next_heartbeat_) Heartbeat();
  for (auto& r : runs_) {
    if (!r->done) continue;
    gpu_slots_.Give(r->plan.gpus, r->plan.gpu_units);
    r->plan.gpus.clear();
  }
  runs_.erase(std::remove_if(runs_.begin(), runs_.end(),
                             [](const std::unique_ptr<RunState>& r) { return r->done; }),
              runs_.end());
  if (registered() && !draining_ && (!next_acquire_ || clock_->SteadyNow() >= *next_acquire_) &&
      LaunchesAllowed()) {
    Acquire();
  }
}

void Agent::PauseLaunches(const std::string& why) {
  ++launch_failures_;
  const auto pause = std::min<std::chrono::milliseconds>(
      kLaunchPauseMax, kLaunchPause * (1 << std::min(launch_failures_ - 1, 10)));
  launch_paused_until_ = clock_->SteadyNow() + pause;
  Log(absl::StrCat("cannot start a trainer (", why, "): taking no trials for ",
                   pause.count() / 1000, " s, and then only once ", options_.trainer,
                   " can be executed"));
}

bool Agent::LaunchesAllowed() {
  if (!launch_paused_until_) return true;
  const Steady now = clock_->SteadyNow();
  if (now < *launch_paused_until_) return false;
  if (absl::Status st = launcher_->CanExecute(options_.trainer); !st.ok()) {
    LogThrottled(absl::StrCat("taking no trials: ", st.message()));
    launch_paused_until_ = now + kLaunchPause;
    return false;
  }
  return true;
}

void Agent::Heartbeat() {
  pb::HeartbeatRequest req;
  req.set_worker_id(worker_id_);
  for (const auto& r : runs_) {
    if (r->done || EndedByCoordinator(r->stop)) continue;
    pb::LeaseProgress* p = req.add_leases();
    *p->mutable_lease() = r->Ref();
    p->set_epoch(r->progress.epoch);
    const AttemptProgress& g = r->progress;
    p->set_fraction(g.epochs > 0 ? std::min(1.0, static_cast<double>(g.epoch) / g.epochs) : 0);
  }
  auto resp = client_->Heartbeat(req);
  next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  if (!resp.ok()) {
    if (ForgotUs("heartbeat", resp.status())) return;
    LogThrottled(absl::StrCat("heartbeat: ", resp.status().message()));
    heartbeat_failing_ = true;
    // Retry sooner than a full interval so a short outage does not cost the leases.
    next_heartbeat_ = clock_->SteadyNow() + std::max(std::chrono::milliseconds(100),
                                                     heartbeat_interval_ / 4);
    return;
  }
  if (heartbeat_failing_) {
    heartbeat_failing_ = false;
    Log(absl::StrCat("heartbeat: coordinator reachable again (", req.leases_size(),
                     " lease(s) renewed)"));
  }
  if (resp->lease_ttl_ms() > 0) {  // follow a coordinator restarted with another TTL
    heartbeat_interval_ = std::chrono::milliseconds(std::max<int64_t>(1, resp->lease_ttl_ms() / 3));
    next_heartbeat_ = clock_->SteadyNow() + heartbeat_interval_;
  }
  for (const pb::WorkerCommand& c : resp->commands()) Obey(c);
}

void Agent::Obey(const pb::WorkerCommand& c) {
  if (c.kind() == pb::WorkerCommand::DRAIN) {
    if (!draining_) Log("coordinator asks to drain: finishing running trials, taking no more");
    draining_ = true;
    return;
  }
  for (auto& r : runs_) {
    if (r->done || r->lease.lease_id() != c.lease().lease_id() ||
        r->lease.fencing_token() != c.lease().fencing_token())
      continue;
    const bool cancel = c.kind() == pb::WorkerCommand::CANCEL_TRIAL;
    const std::string why = !c.reason().empty() ? c.reason()
                            : cancel            ? "cancelled by the coordinator"
                                                : "the coordinator no longer holds the lease";
    LeaseRefused(*r, cancel ? StopKind::kCancel : StopKind::kForget, why);
  }
}

// NOT_FOUND: the coordinator forgot this worker (restarted without it, or expired it).
bool Agent::ForgotUs(const char* what, const absl::Status& s) {
  if (s.code() != absl::StatusCode::kNotFound) return false;
  Log(absl::StrCat(what, ": ", s.message(), "; registering again"));
  worker_id_.clear();
  next_register_.reset();
  return true;
}

void Agent::Acquire() {
  next_acquire_ = clock_->SteadyNow() + options_.acquire_interval;
  const int free_gpus = FreeGpus();
  const int want = gpu_slots_.Wanted() + FreeCpuSlots();
  if (want <= 0) return;
  pb::AcquireTrialRequest req;
  req.set_worker_id(worker_id_);
  req.set_free_gpus(free_gpus);
  req.set_max_trials(want);
  auto resp = client_->AcquireTrial(req);
  if (!resp.ok()) {
    if (ForgotUs("acquire", resp.status())) return;
    LogThrottled(absl::StrCat("acquire: ", resp.status().message()));
    return;
  }
  for (const pb::Lease& l : resp->leases()) Start(l);
}

void Agent::Note(RunState& r, const std::string& text) {
  r.notes += text;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    QueueLog(r, -1, text.substr(start, nl - start));
    start = nl + 1;
  }
}

void Agent::QueueLog(RunState& r, int rank, std::string line) {
  if (logs_supported_) r.logs.Add(rank, std::move(line), clock_->SteadyNow());
}

// Log lines are best effort: a failure never holds up the attempt's other reports.
void Agent::FlushLogs(RunState& r, bool force) {
  if (r.done || r.logs.empty() || !logs_supported_) return;
  if (!force && clock_->SteadyNow() - r.logs.batch_started() < options_.metrics_interval) return;
  if (r.logs.Flush(*client_, r.Ref(), clock_->SteadyNow()).code() ==
      absl::StatusCode::kUnimplemented) {
    Log("the coordinator does not take trial logs (ReportLogs unimplemented); keeping them "
        "in the attempt folders only");
    logs_supported_ = false;
  }
}

void Agent::Fail(RunState& r, FailureKind kind, const std::string& reason) {
  pb::CompleteTrialRequest req;
  *req.mutable_lease() = r.Ref();
  req.mutable_failure()->set_kind(std::string(FailureKindName(kind)));
  req.mutable_failure()->set_failure_kind(static_cast<pb::FailureKind>(kind));
  req.mutable_failure()->set_reason(reason);
  Note(r, absl::StrCat("attempt failed (", FailureKindName(kind), "): ", reason, "\n"));
  r.completion = std::move(req);
}

void Agent::Forget(RunState& r, const std::string& why) {
  Log(absl::StrCat(DescribeLease(r.lease), ": dropped (", why, ")"));
  Note(r, absl::StrCat("lease dropped: ", why, "\n"));
  WriteLogs(r);
  gpu_slots_.Give(r.plan.gpus, r.plan.gpu_units);
  r.plan.gpus.clear();
  r.done = true;
}

void Agent::Start(const pb::Lease& lease) {
  auto run = std::make_unique<RunState>();
  RunState& r = *run;
  r.lease = lease;
  r.last_flush = clock_->SteadyNow();
  r.last_output = r.last_flush;
  runs_.push_back(std::move(run));
  std::variant<AttemptPlan, FailedEvent> planned = PlanAttempt(lease, options_, gpu_slots_);
  if (auto* refused = std::get_if<FailedEvent>(&planned)) {
    Log(absl::StrCat("leased ", DescribeLease(lease), "; not started: ", refused->reason));
    Fail(r, refused->kind, refused->reason);
    return;
  }
  r.plan = std::get<AttemptPlan>(std::move(planned));
  const AttemptPlan& plan = r.plan;
  gpu_slots_.Hold(plan.gpus, plan.gpu_units);
  Log(absl::StrCat("leased ", DescribeLease(lease),
                   plan.gang ? absl::StrCat(", node ", plan.node_rank, "/", plan.nnodes) : "", ", ",
                   plan.nproc, " rank(s)",
                   lease.resume_checkpoint().empty()
                       ? ""
                       : absl::StrCat(", resuming from ", lease.resume_checkpoint())));
  for (const std::string& note : plan.notes) {
    Note(r, note + "\n");
    Log(absl::StrCat(DescribeLease(lease), ": ", note));
  }
  if (!PrepareFolders(r)) return;
  const std::optional<int> master_port = MasterPort(r);
  if (!master_port) return;
  Launch(r, *master_port);
}

// The attempt folder, the checkpoint to resume from in place, and trial.json.
bool Agent::PrepareFolders(RunState& r) {
  AttemptPlan& plan = r.plan;
  if (absl::Status st = CreateAttemptFolders(plan); !st.ok()) {
    Fail(r, FailureKind::kInternal, std::string(st.message()));
    return false;
  }
  if (!plan.resume_from.empty()) {
    const absl::Status st = PlaceCheckpoint(plan.resume_from, plan.ckpt_dir);
    if (st.ok()) {
      plan.config.resume = true;
      Note(r, absl::StrCat("resuming from ", plan.resume_from, " (epoch ",
                           r.lease.resume_epoch(), ")\n"));
    } else if (absl::IsNotFound(st)) {
      Note(r, absl::StrCat("checkpoint ", plan.resume_from,
                           " is not readable on this worker (no shared checkpoint storage?); "
                           "starting from epoch 0\n"));
      Log(absl::StrCat(DescribeLease(r.lease), ": checkpoint ", plan.resume_from,
                       " is not readable here; starting from epoch 0"));
    } else {
      Fail(r, FailureKind::kInternal, std::string(st.message()));
      return false;
    }
  }
  if (absl::Status st = WriteTrialConfig(plan.config_path, plan.config); !st.ok()) {
    Fail(r, FailureKind::kInternal, std::string(st.message()));
    return false;
  }
  return true;
}

// The rendezvous port: node 0 of a gang hosts the store (a free port unless one is fixed) and
// reports it, so that the other nodes get their leases; a single-node multi-rank trial takes a
// free loopback port.
std::optional<int> Agent::MasterPort(RunState& r) {
  const AttemptPlan& plan = r.plan;
  if (!plan.gang) return plan.world_size > 1 ? FreePort() : 0;
  int port = plan.master_port;
  if (!plan.hosts_store) return port;
  if (port == 0) port = FreePort(/*any_address=*/true);
  if (port == 0 || !PortFree(port)) {
    // Fail fast (and retryably) instead of letting every rank wait for a store that cannot start.
    Fail(r, FailureKind::kInternal,
         absl::StrCat("rendezvous port ", port, " is in use on worker ", options_.name,
                      " (rank 0 hosts the TCPStore there; free it or set --rendezvous-port)"));
    return std::nullopt;
  }
  pb::ReportRendezvousRequest rr;
  *rr.mutable_lease() = r.Ref();
  rr.set_master_port(port);
  if (absl::Status st = client_->ReportRendezvous(rr); !st.ok()) {
    Fail(r, FailureKind::kInternal, absl::StrCat("cannot report rendezvous port ", port,
                                                 " to the coordinator: ", st.message()));
    return std::nullopt;
  }
  return port;
}

void Agent::Launch(RunState& r, int master_port) {
  const AttemptPlan& plan = r.plan;
  const int launches = Launches(plan);
  r.procs.resize(launches);
  r.exits.resize(launches);
  for (int local = 0; local < launches; ++local) {
    auto p = launcher_->Launch(RankSpec(plan, r.lease, options_, local, master_port));
    if (p.ok()) {
      r.procs[local] = *std::move(p);
      continue;
    }
    const std::string reason =
        absl::StrCat("worker ", options_.name, " cannot start rank ", r.GlobalRank(local), ": ",
                     p.status().message(), "; the trial goes back to the queue");
    Log(absl::StrCat(DescribeLease(r.lease), ": ", reason));
    Note(r, reason + "\n");
    PauseLaunches(std::string(p.status().message()));
    // Ranks already started are stopped; the attempt is reported once they have exited.
    r.procs.resize(local);
    r.exits.resize(local);
    if (local == 0) {
      Fail(r, FailureKind::kLaunch, reason);
    } else {
      r.progress.failed = FailedEvent{FailureKind::kLaunch, reason};
      RequestStop(r, StopKind::kPeerFailed, reason);
    }
    return;
  }
  if (launch_failures_ > 0) Log("trainers start again; taking trials");
  launch_failures_ = 0;
  launch_paused_until_.reset();
  const std::string addr = plan.gang ? plan.master_addr : "127.0.0.1";
  Note(r, absl::StrCat("started ", plan.nproc, " rank(s) of world size ", plan.world_size,
                       plan.world_size > 1 ? absl::StrCat(" (MASTER_ADDR ", addr, ":", master_port, ")")
                                           : "",
                       "\n"));
  WriteLogs(r);
}

void Agent::RequestStop(RunState& r, StopKind kind, const std::string& reason) {
  if (r.stop == StopKind::kNone || kind == StopKind::kCancel || kind == StopKind::kForget ||
      kind == StopKind::kLeaseLost) {
    r.stop = kind;
    r.stop_reason = reason;
  }
  if (r.term_sent) return;
  Log(absl::StrCat(DescribeLease(r.lease), ": stopping (", reason, "): SIGTERM"));
  Note(r, absl::StrCat("stopping: ", reason, "; SIGTERM sent\n"));
  r.term_sent = clock_->SteadyNow();
  r.Signal(&Process::Terminate);
}

void Agent::HandleEvent(RunState& r, int local_rank, const std::string& line) {
  absl::StatusOr<std::optional<TrainerEvent>> e = ParseEventLine(line);
  if (!e.ok()) {
    Note(r, absl::StrCat("ignored malformed event: ", e.status().message(), "\n"));
    return;
  }
  if (!*e) return;  // not an event
  const bool leader = r.plan.node_rank == 0 && local_rank == 0;
  const bool no_points = r.progress.points.empty();
  const EventEffect effect = ApplyEvent(r.progress, **e, r.GlobalRank(local_rank),
                                        leader, WallMs(clock_));
  if (no_points && !r.progress.points.empty()) r.last_flush = clock_->SteadyNow();  // a new batch
  if (!effect.note.empty()) Note(r, effect.note + "\n");
  if (effect.checkpoint) {
    FlushMetrics(r, true);  // the points up to the checkpoint go first
    FlushCheckpoint(r);
  }
}

void Agent::Poll(RunState& r) {
  if (r.done || r.completion || r.awaiting_release) return;
  bool all_exited = true;
  for (size_t i = 0; i < r.procs.size(); ++i) {
    for (const std::string& line : r.procs[i]->TakeStdoutLines()) {
      r.last_output = clock_->SteadyNow();
      HandleEvent(r, static_cast<int>(i), line);
    }
    for (std::string& line : r.procs[i]->TakeStderrLines()) {
      r.last_output = clock_->SteadyNow();
      QueueLog(r, r.GlobalRank(static_cast<int>(i)), std::move(line));
    }
    if (r.done) return;  // a report showed the lease is gone
    if (!r.exits[i]) {
      r.exits[i] = r.procs[i]->Exited();
      if (r.exits[i]) {
        const int rank = r.GlobalRank(static_cast<int>(i));
        Note(r, absl::StrCat("rank ", rank, ": ", r.exits[i]->Describe(), "\n"));
        if (!r.exits[i]->ok() && r.first_bad < 0) r.first_bad = static_cast<int>(i);
        if (!r.exits[i]->ok() && r.stop == StopKind::kNone && r.procs.size() > 1) {
          RequestStop(r, StopKind::kPeerFailed,
                      absl::StrCat("rank ", rank, " ended with ", r.exits[i]->Describe()));
        }
      }
    }
    if (!r.exits[i]) all_exited = false;
  }
  if (all_exited) {
    Finish(r);
    return;
  }
  if (options_.stall_timeout.count() > 0 && r.stop == StopKind::kNone &&
      clock_->SteadyNow() - r.last_output >= options_.stall_timeout) {
    const std::string why =
        absl::StrCat("no output from the trainer for ", options_.stall_timeout.count() / 1000.0,
                     " s (stall timeout): taken as hung");
    Log(absl::StrCat(DescribeLease(r.lease), ": ", why));
    RequestStop(r, StopKind::kStalled, why);
  }
}

void Agent::Finish(RunState& r) {
  for (size_t i = 0; i < r.procs.size(); ++i) {
    for (std::string& line : r.procs[i]->TakeStderrLines())
      QueueLog(r, r.GlobalRank(static_cast<int>(i)), std::move(line));
  }
  WriteLogs(r);
  gpu_slots_.Give(r.plan.gpus, r.plan.gpu_units);
  r.plan.gpus.clear();
  if (EndedByCoordinator(r.stop)) {
    Forget(r, r.stop_reason);  // nothing more to report
    return;
  }
  FlushMetrics(r, true);
  FlushCheckpoint(r);
  if (r.done) return;
  AttemptFacts facts{options_.name, r.plan.node_rank, r.plan.nproc, {}, r.first_bad, r.stop,
                     r.stop_reason, r.progress.finished, r.progress.failed, r.progress.interrupted};
  for (const auto& e : r.exits) facts.exits.push_back(*e);
  Report(r, DecideOutcome(facts));
}

void Agent::Report(RunState& r, const Outcome& outcome) {
  switch (outcome.kind) {
    case Outcome::Kind::kDrop:
      Forget(r, outcome.reason);
      return;
    case Outcome::Kind::kAwaitRelease:
      // Rank 0's worker reports the result; keep the lease alive until the coordinator lets go.
      Note(r, "all ranks of this node finished; waiting for rank 0's report\n");
      r.awaiting_release = true;
      return;
    case Outcome::Kind::kSucceeded: {
      const FinishedEvent& f = *r.progress.finished;
      pb::CompleteTrialRequest req;
      *req.mutable_lease() = r.Ref();
      pb::TrialResult* res = req.mutable_result();
      res->set_top1(f.top1);
      res->set_top5(f.top5);
      res->set_images_per_sec(f.images_per_sec);
      res->set_cost_uniform(f.cost_uniform);
      res->set_cost_first_last_fp32(f.cost_first_last_fp32);
      Note(r, absl::StrCat("finished: top1 ", res->top1(), "\n"));
      r.completion = std::move(req);
      break;
    }
    case Outcome::Kind::kFailed:
      // An interruption (a drain, a Pareto rung's stop epoch) is no failure of the trial.
      Log(absl::StrCat(DescribeLease(r.lease),
                       outcome.failure == FailureKind::kInterrupted ? ": stopped: " : ": failed: ",
                       outcome.reason));
      Fail(r, outcome.failure, outcome.reason);
      break;
  }
  TryComplete(r);
}

void Agent::TryComplete(RunState& r) {
  if (r.done || !r.completion) return;
  if (r.retry_at && clock_->SteadyNow() < *r.retry_at) return;
  // Everything the trainer said goes before the outcome.
  FlushMetrics(r, true);
  FlushCheckpoint(r);
  if (r.done) return;
  if (!r.progress.points.empty() || r.progress.checkpoint) {  // the coordinator is unreachable
    r.retry_at = clock_->SteadyNow() + std::chrono::seconds(1);
    return;
  }
  FlushLogs(r, true);
  absl::Status s = client_->CompleteTrial(*r.completion);
  if (s.ok()) {
    const bool success = r.completion->has_result();
    const bool stopped =
        !success && r.completion->failure().failure_kind() == pb::FAILURE_KIND_INTERRUPTED;
    const char* what = success ? "success" : stopped ? "the stop" : "failure";
    Log(absl::StrCat(DescribeLease(r.lease), success ? ": succeeded" : ": reported ",
                     success ? "" : absl::StrCat(what, ": ", r.completion->failure().reason())));
    Note(r, absl::StrCat("reported ", what, "\n"));
    WriteLogs(r);
    if (success && !options_.keep_checkpoints && !r.lease.keep_checkpoint()) {
      RemoveTrialCheckpoints(checkpoint_root_, r.lease.trial_id());
    }
    r.done = true;
    return;
  }
  if (IsTransient(s)) {
    LogThrottled(absl::StrCat(DescribeLease(r.lease), ": CompleteTrial: ", s.message(),
                              "; will retry"));
    r.retry_at = clock_->SteadyNow() + std::chrono::seconds(1);
    return;
  }
  Forget(r, absl::StrCat("CompleteTrial refused: ", s.message()));
}

void Agent::FlushMetrics(RunState& r, bool force) {
  if (r.done || r.progress.points.empty()) return;
  const Steady now = clock_->SteadyNow();
  if (!force && now - r.last_flush < options_.metrics_interval) return;
  pb::ReportMetricsRequest req;
  *req.mutable_lease() = r.Ref();
  for (auto& p : r.progress.points) *req.add_points() = p;
  auto resp = client_->ReportMetrics(req);
  r.last_flush = now;
  if (resp.ok()) {
    r.progress.points.clear();
    return;
  }
  if (IsTransient(resp.status())) {
    LogThrottled(absl::StrCat(DescribeLease(r.lease), ": ReportMetrics: ", resp.status().message(),
                              "; the points are kept and sent again"));
    constexpr size_t kMaxPending = 100000;
    if (r.progress.points.size() > kMaxPending) {
      r.progress.points.erase(r.progress.points.begin(),
                             r.progress.points.end() - static_cast<long>(kMaxPending));
    }
    return;
  }
  if (resp.status().code() == absl::StatusCode::kInvalidArgument) {
    Note(r, absl::StrCat("metrics rejected: ", resp.status().message(), "\n"));
    r.progress.points.clear();
    return;
  }
  r.progress.points.clear();
  LeaseRefused(r, StopKind::kLeaseLost, absl::StrCat("lease lost: ", resp.status().message()));
}

void Agent::FlushCheckpoint(RunState& r) {
  if (r.done || !r.progress.checkpoint) return;
  pb::ReportCheckpointRequest req;
  *req.mutable_lease() = r.Ref();
  req.set_epoch(r.progress.checkpoint->epoch);
  req.set_path(r.progress.checkpoint->path);
  absl::Status s = client_->ReportCheckpoint(req);
  if (s.ok()) {
    Note(r, absl::StrCat("checkpoint at epoch ", req.epoch(), ": ", req.path(), "\n"));
    r.progress.checkpoint.reset();
    return;
  }
  if (IsTransient(s)) return;
  r.progress.checkpoint.reset();
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    Note(r, absl::StrCat("checkpoint rejected: ", s.message(), "\n"));
    return;
  }
  LeaseRefused(r, StopKind::kLeaseLost, absl::StrCat("lease lost: ", s.message()));
}

void Agent::LeaseRefused(RunState& r, StopKind kind, const std::string& why) {
  if (r.Running()) RequestStop(r, kind, why);
  else Forget(r, why);
}

void Agent::WriteLogs(RunState& r) {
  std::vector<std::pair<int, std::string>> tails;
  for (size_t i = 0; i < r.procs.size(); ++i) {
    tails.emplace_back(r.GlobalRank(static_cast<int>(i)),
                       r.procs[i]->StderrTail());
  }
  WriteAttemptLogs(r.plan.dir, tails, r.notes);
}

int Agent::CleanUp() {
  std::set<std::string> in_use;
  for (const auto& r : runs_) {
    in_use.insert(r->plan.dir);
    in_use.insert(fs::path(r->plan.ckpt_dir).parent_path().string());
  }
  const int removed = RemoveOldFolders(
      {(fs::path(options_.work_dir) / "attempts").string(), checkpoint_root_}, in_use,
      options_.retention);
  if (removed > 0) Log(absl::StrCat("retention: removed ", removed, " old attempt folder(s)"));
  return removed;
}

void Agent::Run(const std::atomic<bool>& stop, std::chrono::milliseconds poll) {
  while (!stop.load() && !drain_requested_.load()) {
    Step();
    std::this_thread::sleep_for(poll);
  }
  RequestDrain();
  const auto deadline = std::chrono::steady_clock::now() + options_.grace + poll * 20 +
                        std::chrono::seconds(5);
  do {
    Step();
    if (runs_.empty()) break;
    std::this_thread::sleep_for(poll);
  } while (std::chrono::steady_clock::now() < deadline);
  if (!runs_.empty()) {
    Log(absl::StrCat(runs_.size(), " attempt(s) not reported before shutdown; their leases will "
                                   "expire and the trials re-queue"));
  }
}

}  // namespace wrpn::agent
