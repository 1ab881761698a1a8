#include "server/coordinator.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/network_spec.h"
#include "common/status.h"
#include "common/sweep_spec.h"
#include "common/trainer_protocol.h"
#include "common/worker_labels.h"
#include "server/grid_builder.h"
#include "server/paper_tables.h"
#include "server/validate.h"  // FailureKindOf
#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

using nlohmann::json;
constexpr size_t kRecentEvents = 100000;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool Terminal(TrialState s) {
  return s == TrialState::kSucceeded || s == TrialState::kFailed || s == TrialState::kCancelled;
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", requested, " must be >= 0"));
  }
  return requested == 0 ? kDefaultPageSize : std::min(requested, kMaxPageSize);
}

absl::StatusOr<int64_t> PageToken(const std::string& token) {
  if (token.empty()) return 0;
  int64_t v;
  if (!absl::SimpleAtoi(token, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat("page_token: '", token, "' is not valid"));
  }
  return v;
}

pb::TrialEvent EventMessage(const EventRecord& e) {
  pb::TrialEvent m;
  m.set_seq(e.seq);
  m.set_sweep_id(e.sweep_id);
  m.set_trial_id(e.trial_id);
  m.set_state(static_cast<pb::TrialState>(e.state));
  m.set_attempt(e.attempt);
  m.set_message(e.message);
  m.set_time_ms(e.time_ms);
  return m;
}

pb::SweepState SweepStateOf(const SweepRecord& rec, const int64_t* c) {
  const int64_t queued = c[static_cast<int>(TrialState::kQueued)];
  const int64_t running = c[static_cast<int>(TrialState::kRunning)];
  if (rec.cancelled && queued + running == 0) return pb::SWEEP_CANCELLED;
  if (queued + running > 0) return queued == rec.trial_count ? pb::SWEEP_QUEUED : pb::SWEEP_RUNNING;
  if (c[static_cast<int>(TrialState::kFailed)] + c[static_cast<int>(TrialState::kCancelled)] > 0)
    return pb::SWEEP_FAILED;
  return pb::SWEEP_SUCCEEDED;
}

}  // namespace

Coordinator::Coordinator(Store* store, const Clock* clock, MetricsRegistry* registry,
                         CoordinatorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)),
      scheduler_(std::make_unique<PriorityScheduler>()) {
  lease_expirations_ = registry->AddCounter(
      "wrpn_lease_expirations_total", "Leases that ran past their TTL without a heartbeat.");
  attempts_total_ = registry->AddCounter("wrpn_trial_attempts_total",
                                         "Trial attempts ended, by outcome.", {"outcome"});
  for (AttemptOutcome o : {AttemptOutcome::kSucceeded, AttemptOutcome::kFailed,
                           AttemptOutcome::kExpired, AttemptOutcome::kCancelled})
    attempts_total_->Declare({AttemptOutcomeName(o)});  // exported at 0 from the start
  points_ingested_ = registry->AddCounter("wrpn_metric_points_ingested_total",
                                          "Metric points stored from ReportMetrics.");
  queue_wait_ = registry->AddHistogram(
      "wrpn_trial_queue_wait_seconds", "Time a trial waited in the queue before a lease.", {},
      MetricsRegistry::ExponentialBuckets(0.01, 4, 12));
  trial_duration_ = registry->AddHistogram(
      "wrpn_trial_duration_seconds", "Duration of successful trial attempts.", {},
      MetricsRegistry::ExponentialBuckets(1, 3, 12));
  sweeps_gauge_ = registry->AddGauge("wrpn_sweeps", "Sweeps by state.", {"state"});
  trials_gauge_ = registry->AddGauge("wrpn_trials", "Trials by state.", {"state"});
  workers_gauge_ = registry->AddGauge("wrpn_workers", "Registered workers by state.", {"state"});
  top1_gauge_ = registry->AddGauge(
      "wrpn_trial_top1", "Final top-1 accuracy of succeeded trials (mean over seeds), percent.",
      {"sweep", "network", "width", "wbits", "abits"});
  worker_images_gauge_ = registry->AddGauge(
      "wrpn_worker_images_per_second",
      "Training throughput last reported by a worker's trainer (images/s).", {"worker"});
  worker_gpu_memory_gauge_ = registry->AddGauge(
      "wrpn_worker_gpu_memory_bytes", "GPU memory in use last reported by a worker's trainer.",
      {"worker"});
  worker_data_wait_gauge_ = registry->AddGauge(
      "wrpn_worker_data_wait_ms_per_step",
      "Time per training step a worker's trainer last waited for input data (ms).", {"worker"});
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
  std::lock_guard<std::mutex> lock(c->mu_);
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
  leases_.clear();
  expiry_.clear();
  held_.clear();
  workers_.clear();
  scheduler_ = std::make_unique<PriorityScheduler>();
  init_deps_ = InitDependencies();
  init_parked_.clear();
  const Steady now = clock_->SteadyNow();
  for (auto& s : snap.sweeps) {
    next_sweep_id_ = std::max(next_sweep_id_, s.id + 1);
    sweeps_[s.id].rec = std::move(s);
  }
  for (auto& w : snap.workers) {
    WorkerEntry e;
    e.rec = std::move(w);
    e.last_seen = now;  // silent workers get a full TTL from the restart
    int64_t n;
    if (absl::SimpleAtoi(e.rec.id.substr(e.rec.id.find('-') + 1), &n))
      next_worker_ = std::max(next_worker_, n + 1);
    workers_[e.rec.id] = std::move(e);
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
  for (auto& a : snap.attempts) {
    next_token_ = std::max(next_token_, a.fencing_token + 1);
    auto it = trials_.find(a.trial_id);
    if (it == trials_.end()) continue;
    if (a.outcome == AttemptOutcome::kRunning && it->second.rec.state == TrialState::kRunning) {
      for (size_t r = 0; r < a.lease_ids.size(); ++r) {
        LeaseEntry l;
        l.lease_id = a.lease_ids[r];
        l.trial_id = a.trial_id;
        l.attempt = a.attempt;
        l.token = a.fencing_token;
        l.worker_id = r < a.worker_ids.size() ? a.worker_ids[r] : "";
        l.rank = static_cast<int>(r);
        l.expires = now + options_.lease_ttl;
        l.delivered = true;
        AddLease(std::move(l));
      }
    }
    it->second.attempts.push_back(std::move(a));
  }
  for (const auto& [id, s] : sweeps_) IndexInitDependenciesLocked(s);
  const int64_t now_ms = NowMs();
  for (auto& [id, t] : trials_) {
    if (t.rec.state != TrialState::kQueued) continue;
    // A backoff that was running at the restart runs on from the failed attempt's end.
    const int64_t left_ms =
        t.attempts.empty() ? 0 : t.attempts.back().ended_ms + RetryDelay(t).count() - now_ms;
    QueueLocked(t.rec, now + std::chrono::milliseconds(std::max<int64_t>(0, left_ms)));
  }
  next_seq_ = std::max(next_seq_, snap.max_event_seq + 1);
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
  for (auto& e : m.events) {
    recent_events_.push_back(std::move(e));
    if (recent_events_.size() > kRecentEvents) recent_events_.pop_front();
  }
  if (!m.events.empty()) events_cv_.notify_all();
  return absl::OkStatus();
}

void Coordinator::AddEvent(Mutation& m, const TrialRecord& t, const std::string& message) {
  m.events.push_back({next_seq_++, NowMs(), t.sweep_id, t.id, static_cast<int>(t.state),
                      t.attempts, message});
}

void Coordinator::SetTrial(const TrialRecord& t) {
  TrialEntry& e = trials_[t.id];
  auto& counts = sweeps_[t.sweep_id].counts;
  if (e.rec.id == t.id) counts[static_cast<int>(e.rec.state)]--;
  counts[static_cast<int>(t.state)]++;
  e.rec = t;
}

void Coordinator::AddLease(LeaseEntry lease) {
  auto wit = workers_.find(lease.worker_id);
  if (wit != workers_.end()) {
    wit->second.leases.insert(lease.lease_id);
    const TrialRecord& t = trials_[lease.trial_id].rec;
    if (t.gpus_per_node > 0) wit->second.used_gpus += t.gpus_per_node;
    else wit->second.used_cpu_slots++;
  }
  expiry_.insert({lease.expires, lease.lease_id});
  leases_[lease.lease_id] = std::move(lease);
}

void Coordinator::DropLease(const std::string& lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  const LeaseEntry& l = it->second;
  auto wit = workers_.find(l.worker_id);
  if (wit != workers_.end()) {
    wit->second.leases.erase(lease_id);
    const TrialRecord& t = trials_[l.trial_id].rec;
    if (t.gpus_per_node > 0) wit->second.used_gpus -= t.gpus_per_node;
    else wit->second.used_cpu_slots--;
  }
  expiry_.erase({l.expires, lease_id});
  leases_.erase(it);
}

QueuedTrial Coordinator::QueuedOf(const TrialRecord& t) const {
  auto sit = sweeps_.find(t.sweep_id);
  return {t.id, sit == sweeps_.end() ? 0 : sit->second.rec.priority, t.sweep_id, t.index,
          t.gpus_per_node, t.nodes};
}

std::vector<WorkerView> Coordinator::WorkerViews(const std::string& requester,
                                                 int reported_free_gpus, bool use_reported) const {
  std::vector<WorkerView> views;
  for (const auto& [id, w] : workers_) {
    if (w.rec.lost && id != requester) continue;
    WorkerView v;
    v.id = id;
    v.total_gpus = static_cast<int>(w.rec.gpus.size());
    v.free_gpus = std::max(0, v.total_gpus - w.used_gpus);
    if (id == requester && use_reported) v.free_gpus = std::min(v.free_gpus, reported_free_gpus);
    v.free_cpu_slots = std::max(0, w.rec.max_cpu_trials - w.used_cpu_slots);
    v.schedulable = !w.rec.draining && (id == requester || !w.rec.lost);
    if (auto it = w.rec.labels.find(kSlurmStepNodesLabel); it != w.rec.labels.end()) {
      if (!absl::SimpleAtoi(it->second, &v.step_nodes) || v.step_nodes < 1) v.step_nodes = 1;
    }
    views.push_back(std::move(v));
  }
  return views;
}

std::string Coordinator::PendingReason(const TrialRecord& t) const {
  if (t.state != TrialState::kQueued) return "";
  if (const auto& until = trials_.at(t.id).held_until) {
    const double s = std::chrono::duration<double>(*until - clock_->SteadyNow()).count();
    return absl::StrFormat("retry backoff after a failed attempt: leased again in %.0f s",
                           std::max(0.0, std::ceil(s)));
  }
  if (std::string why = InitPendingReason(t); !why.empty()) return why;
  std::string why = scheduler_->Unplaceable(QueuedOf(t), WorkerViews("", 0, false));
  if (!why.empty()) return why;
  return "waiting for a free worker";
}

// ---------------------------------------------------------------------------------------------
// Client API

absl::StatusOr<pb::SubmitSweepResponse> Coordinator::SubmitSweep(
    const pb::SubmitSweepRequest& req) {
  absl::StatusOr<SweepSpec> spec;
  if (req.has_spec()) {
    std::string text;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    auto st = google::protobuf::util::MessageToJsonString(req.spec(), &text, opts);
    if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
    spec = SweepSpecFromJson(json::parse(text));
  } else if (req.source_case() == pb::SubmitSweepRequest::kSpecText) {
    spec = ParseSweepSpec(req.spec_text());
  } else {
    return absl::InvalidArgumentError("spec: give spec or spec_text");
  }
  if (!spec.ok()) return spec.status();
  pb::SubmitSweepResponse resp;
  // Expansion, configs and costs are computed before taking the lock: a 100,000-trial sweep
  // must not stall heartbeats for long. init_from: fp32 adds the FP32 trials it lacks.
  std::vector<TrialPoint> points = ExpandSweep(*spec);
  for (TrialPoint& p : MissingFp32Points(*spec, points)) points.push_back(std::move(p));
  resp.set_trial_count(static_cast<int64_t>(points.size()));
  if (req.dry_run()) return resp;

  std::map<std::tuple<std::string, double, int, int>, CostReport> costs;
  Mutation m;
  m.op = "submit";
  m.trials.reserve(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const TrialPoint& p = points[i];
    TrialRecord t;
    t.index = static_cast<int64_t>(i);
    t.network = p.network;
    t.width = p.width;
    t.wbits = p.wbits;
    t.abits = p.abits;
    t.seed = p.seed;
    t.scheme = p.scheme;
    t.config_json = TrialConfigJson(*spec, p).dump();
    t.gpus_per_node = spec->resources.gpus_per_node;
    t.nodes = spec->resources.nodes;
    auto key = std::make_tuple(p.network, p.width, p.wbits, p.abits);
    auto cit = costs.find(key);
    if (cit == costs.end()) {
      auto c = ComputeCost(p.network, p.width, p.wbits, p.abits, DefaultInput(p.network));
      cit = costs.emplace(key, c.ok() ? *c : CostReport{}).first;
    }
    t.fma_ratio = cit->second.fma_ratio;
    t.cost_uniform = cit->second.cost_uniform;
    t.cost_first_last_fp32 = cit->second.cost_first_last_fp32;
    m.trials.push_back(std::move(t));
  }
  SweepRecord s;
  s.name = spec->name;
  s.spec_json = SweepSpecToJson(*spec).dump();
  s.priority = spec->priority;
  s.max_attempts = spec->max_attempts;
  s.trial_count = static_cast<int64_t>(points.size());

  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  s.id = next_sweep_id_;
  s.created_ms = now;
  m.sweeps.push_back(s);
  for (size_t i = 0; i < m.trials.size(); ++i) {
    m.trials[i].id = next_trial_id_ + static_cast<int64_t>(i);
    m.trials[i].sweep_id = s.id;
    m.trials[i].queued_ms = now;
  }
  m.events.push_back({next_seq_++, now, s.id, 0, 0, 0,
                      absl::StrCat("sweep '", s.name, "' submitted with ", points.size(),
                                   " trials")});
  RETURN_IF_ERROR(CommitLocked(m));
  next_sweep_id_++;
  next_trial_id_ += static_cast<int64_t>(points.size());
  SweepEntry& se = sweeps_[s.id];
  se.rec = s;
  se.trial_ids.reserve(m.trials.size());
  for (const TrialRecord& t : m.trials) {
    se.trial_ids.push_back(t.id);
    SetTrial(t);
    scheduler_->Enqueue(QueuedOf(t));
  }
  IndexInitDependenciesLocked(se);
  resp.set_sweep_id(s.id);
  return resp;
}

pb::Sweep Coordinator::SweepMessage(const SweepEntry& s, bool with_spec) const {
  pb::Sweep m;
  m.set_id(s.rec.id);
  m.set_name(s.rec.name);
  m.set_state(SweepStateOf(s.rec, s.counts));
  m.set_priority(s.rec.priority);
  m.set_max_attempts(s.rec.max_attempts);
  m.set_created_ms(s.rec.created_ms);
  auto* c = m.mutable_counts();
  c->set_queued(s.counts[1]);
  c->set_running(s.counts[2]);
  c->set_succeeded(s.counts[3]);
  c->set_failed(s.counts[4]);
  c->set_cancelled(s.counts[5]);
  c->set_total(s.rec.trial_count);
  if (with_spec) {
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    (void)google::protobuf::util::JsonStringToMessage(s.rec.spec_json, m.mutable_spec(), opts);
  }
  return m;
}

absl::StatusOr<pb::GetSweepResponse> Coordinator::GetSweep(const pb::GetSweepRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  pb::GetSweepResponse resp;
  *resp.mutable_sweep() = SweepMessage(it->second, true);
  return resp;
}

absl::StatusOr<pb::ListSweepsResponse> Coordinator::ListSweeps(const pb::ListSweepsRequest& req) {
  ASSIGN_OR_RETURN(int page, PageSize(req.page_size()));
  ASSIGN_OR_RETURN(int64_t from, PageToken(req.page_token()));
  std::lock_guard<std::mutex> lock(mu_);
  pb::ListSweepsResponse resp;
  for (auto it = sweeps_.lower_bound(from); it != sweeps_.end(); ++it) {
    if (req.state() != pb::SWEEP_STATE_UNSPECIFIED &&
        SweepStateOf(it->second.rec, it->second.counts) != req.state())
      continue;
    if (resp.sweeps_size() == page) {
      resp.set_next_page_token(absl::StrCat(it->first));
      break;
    }
    *resp.add_sweeps() = SweepMessage(it->second, false);
  }
  return resp;
}

absl::StatusOr<pb::CancelSweepResponse> Coordinator::CancelSweep(
    const pb::CancelSweepRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  Mutation m;
  m.op = "cancel";
  SweepRecord s = it->second.rec;
  s.cancelled = true;
  m.sweeps.push_back(s);
  int64_t n = 0;
  for (int64_t id : it->second.trial_ids) {
    TrialEntry& t = trials_[id];
    if (t.rec.state == TrialState::kQueued) {
      TrialRecord r = t.rec;
      r.state = TrialState::kCancelled;
      r.finished_ms = NowMs();
      scheduler_->Remove(id);
      UnholdLocked(t);
      SetTrial(r);
      m.trials.push_back(r);
      AddEvent(m, r, "cancelled");
      ++n;
    } else if (t.rec.state == TrialState::kRunning) {
      EndAttemptLocked(t, AttemptOutcome::kCancelled, "sweep cancelled", false, "", m);
      ++n;
    }
  }
  it->second.rec = s;
  RETURN_IF_ERROR(CommitLocked(m));
  pb::CancelSweepResponse resp;
  resp.set_cancelled_trials(n);
  return resp;
}

absl::StatusOr<pb::RetrySweepResponse> Coordinator::RetrySweep(const pb::RetrySweepRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  Mutation m;
  m.op = "retry";
  SweepRecord s = it->second.rec;
  s.cancelled = false;
  m.sweeps.push_back(s);
  int64_t n = 0;
  for (int64_t id : it->second.trial_ids) {
    TrialEntry& t = trials_[id];
    if (t.rec.state != TrialState::kFailed && t.rec.state != TrialState::kCancelled) continue;
    TrialRecord r = t.rec;
    r.state = TrialState::kQueued;
    r.retry_base = r.attempts;
    r.queued_ms = NowMs();
    r.finished_ms = 0;
    SetTrial(r);
    scheduler_->Enqueue(QueuedOf(r));
    m.trials.push_back(r);
    AddEvent(m, r, "re-queued by retry");
    ++n;
  }
  it->second.rec = s;
  RETURN_IF_ERROR(CommitLocked(m));
  pb::RetrySweepResponse resp;
  resp.set_requeued_trials(n);
  return resp;
}

pb::Trial Coordinator::TrialMessage(const TrialEntry& e) const {
  const TrialRecord& t = e.rec;
  pb::Trial m;
  m.set_id(t.id);
  m.set_sweep_id(t.sweep_id);
  m.set_index(t.index);
  m.set_network(t.network);
  m.set_width(t.width);
  m.set_wbits(t.wbits);
  m.set_abits(t.abits);
  m.set_seed(t.seed);
  m.set_state(static_cast<pb::TrialState>(t.state));
  m.set_attempts(t.attempts);
  m.set_error(t.error);
  m.set_pending_reason(PendingReason(t));
  m.set_checkpoint_path(t.checkpoint_path);
  m.set_checkpoint_epoch(t.checkpoint_epoch);
  if (t.best_top1) m.set_best_top1(*t.best_top1);
  if (t.final_top1) m.set_final_top1(*t.final_top1);
  if (t.final_top5) m.set_final_top5(*t.final_top5);
  if (t.images_per_sec) m.set_images_per_sec(*t.images_per_sec);
  m.set_cost_uniform(t.cost_uniform);
  m.set_cost_first_last_fp32(t.cost_first_last_fp32);
  m.set_queued_ms(t.queued_ms);
  m.set_started_ms(t.started_ms);
  m.set_finished_ms(t.finished_ms);
  m.set_trial_config_json(t.config_json);
  m.set_gpus_per_node(t.gpus_per_node);
  m.set_nodes(t.nodes);
  m.set_scheme(t.scheme);
  if (t.state == TrialState::kRunning && !e.attempts.empty() &&
      !e.attempts.back().lease_ids.empty()) {
    auto lit = leases_.find(e.attempts.back().lease_ids[0]);
    if (lit != leases_.end()) {
      m.set_progress_epoch(lit->second.progress_epoch);
      m.set_progress_fraction(lit->second.progress_fraction);
    }
  }
  return m;
}

absl::StatusOr<pb::ListTrialsResponse> Coordinator::ListTrials(const pb::ListTrialsRequest& req) {
  ASSIGN_OR_RETURN(int page, PageSize(req.page_size()));
  ASSIGN_OR_RETURN(int64_t from, PageToken(req.page_token()));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  pb::ListTrialsResponse resp;
  const auto& ids = it->second.trial_ids;
  for (size_t i = static_cast<size_t>(from); i < ids.size(); ++i) {
    const TrialEntry& t = trials_.at(ids[i]);
    if (req.state() != pb::TRIAL_STATE_UNSPECIFIED &&
        static_cast<int>(t.rec.state) != static_cast<int>(req.state()))
      continue;
    if (!req.network().empty() && t.rec.network != req.network()) continue;
    if (req.has_width() && t.rec.width != req.width()) continue;
    if (req.has_wbits() && t.rec.wbits != req.wbits()) continue;
    if (req.has_abits() && t.rec.abits != req.abits()) continue;
    if (resp.trials_size() == page) {
      resp.set_next_page_token(absl::StrCat(i));
      break;
    }
    *resp.add_trials() = TrialMessage(t);
  }
  return resp;
}

absl::StatusOr<pb::GetTrialResponse> Coordinator::GetTrial(const pb::GetTrialRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = trials_.find(req.trial_id());
  if (it == trials_.end()) return absl::NotFoundError(absl::StrCat("trial ", req.trial_id()));
  pb::GetTrialResponse resp;
  *resp.mutable_trial() = TrialMessage(it->second);
  for (const AttemptRecord& a : it->second.attempts) {
    pb::Attempt* m = resp.add_attempts();
    m->set_attempt(a.attempt);
    m->set_outcome(static_cast<pb::AttemptOutcome>(a.outcome));
    m->set_fencing_token(a.fencing_token);
    for (const auto& w : a.worker_ids) m->add_worker_ids(w);
    m->set_started_ms(a.started_ms);
    m->set_ended_ms(a.ended_ms);
    m->set_reason(a.reason);
    m->set_resume_checkpoint(a.resume_checkpoint);
    if (a.failure_kind) m->set_failure_kind(static_cast<pb::FailureKind>(*a.failure_kind));
  }
  if (it->second.last_metrics.empty() && it->second.rec.attempts > 0) {
    // After a restart the latest values are rebuilt from the stored series.
    auto points = store_->Metrics(it->first, "");
    if (!points.ok()) return points.status();
    for (const MetricRecord& p : *points) {
      auto& last = it->second.last_metrics[p.name];
      if (last.name.empty() || p.step >= last.step) last = p;
    }
  }
  for (const auto& [name, p] : it->second.last_metrics) {
    pb::MetricValue* v = resp.add_last_metrics();
    v->set_name(p.name);
    v->set_step(p.step);
    v->set_value(p.value);
    v->set_wall_ms(p.wall_ms);
  }
  return resp;
}

absl::StatusOr<pb::GetTrialMetricsResponse> Coordinator::GetTrialMetrics(
    const pb::GetTrialMetricsRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!trials_.count(req.trial_id()))
    return absl::NotFoundError(absl::StrCat("trial ", req.trial_id()));
  ASSIGN_OR_RETURN(auto points, store_->Metrics(req.trial_id(), req.name()));
  pb::GetTrialMetricsResponse resp;
  for (const MetricRecord& p : points) {
    pb::MetricValue* v = resp.add_points();
    v->set_name(p.name);
    v->set_step(p.step);
    v->set_value(p.value);
    v->set_wall_ms(p.wall_ms);
  }
  return resp;
}

absl::StatusOr<pb::GetGridResponse> Coordinator::GetGrid(const pb::GetGridRequest& req) {
  ASSIGN_OR_RETURN(const PaperRef ref, ParsePaperRef(req.paper_ref()));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sweeps_.find(req.sweep_id());
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
  std::vector<const TrialRecord*> trials;
  trials.reserve(it->second.trial_ids.size());
  for (int64_t id : it->second.trial_ids) trials.push_back(&trials_.at(id).rec);
  return BuildGrid(req.sweep_id(), trials, paper_index_, ref);
}

absl::StatusOr<pb::GetPaperTablesResponse> Coordinator::GetPaperTables(
    const pb::GetPaperTablesRequest&) {
  std::lock_guard<std::mutex> lock(mu_);
  return PaperTablesMessage(paper_);
}

pb::Worker Coordinator::WorkerMessage(const WorkerEntry& w) const {
  pb::Worker m;
  m.set_id(w.rec.id);
  m.set_name(w.rec.name);
  m.set_address(w.rec.address);
  for (const GpuRecord& g : w.rec.gpus) {
    pb::Gpu* gm = m.add_gpus();
    gm->set_index(g.index);
    gm->set_memory_bytes(g.memory_bytes);
    gm->set_name(g.name);
  }
  m.set_cpus(w.rec.cpus);
  for (const auto& [k, v] : w.rec.labels) (*m.mutable_labels())[k] = v;
  m.set_state(w.rec.lost ? "lost" : w.rec.draining ? "draining" : "alive");
  m.set_registered_ms(w.rec.registered_ms);
  m.set_last_heartbeat_ms(w.rec.last_heartbeat_ms);
  m.set_free_gpus(std::max(0, static_cast<int>(w.rec.gpus.size()) - w.used_gpus));
  std::set<int64_t> running;
  for (const auto& l : w.leases) running.insert(leases_.at(l).trial_id);
  for (int64_t t : running) m.add_running_trials(t);
  return m;
}

absl::StatusOr<pb::ListWorkersResponse> Coordinator::ListWorkers(const pb::ListWorkersRequest&) {
  std::lock_guard<std::mutex> lock(mu_);
  pb::ListWorkersResponse resp;
  for (const auto& [id, w] : workers_) *resp.add_workers() = WorkerMessage(w);
  return resp;
}

absl::StatusOr<pb::DrainWorkerResponse> Coordinator::DrainWorker(
    const pb::DrainWorkerRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(req.worker_id());
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker '", req.worker_id(), "'"));
  }
  Mutation m;
  m.op = "drain";
  WorkerRecord w = it->second.rec;
  w.draining = req.drain();
  m.workers.push_back(w);
  RETURN_IF_ERROR(CommitLocked(m));
  it->second.rec = w;
  pb::DrainWorkerResponse resp;
  *resp.mutable_worker() = WorkerMessage(it->second);
  return resp;
}

absl::Status Coordinator::WatchSweep(const pb::WatchSweepRequest& req,
                                     const std::function<bool(const pb::WatchSweepResponse&)>& send,
                                     const std::function<bool()>& stop) {
  int64_t after = 0;
  pb::WatchSweepResponse first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sweeps_.find(req.sweep_id());
    if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("sweep ", req.sweep_id()));
    *first.mutable_sweep() = SweepMessage(it->second, false);
    after = next_seq_ - 1;
  }
  if (!send(first)) return absl::OkStatus();
  auto finished = [](pb::SweepState s) {
    return s == pb::SWEEP_SUCCEEDED || s == pb::SWEEP_FAILED || s == pb::SWEEP_CANCELLED;
  };
  if (finished(first.sweep().state())) return absl::OkStatus();
  for (;;) {
    std::vector<pb::WatchSweepResponse> out;
    bool done = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      events_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
        return shutdown_ || (!recent_events_.empty() && recent_events_.back().seq > after);
      });
      if (shutdown_) return absl::OkStatus();
      const SweepEntry& s = sweeps_.at(req.sweep_id());
      for (auto it = std::lower_bound(recent_events_.begin(), recent_events_.end(), after + 1,
                                      [](const EventRecord& e, int64_t seq) { return e.seq < seq; });
           it != recent_events_.end(); ++it) {
        after = it->seq;
        if (it->sweep_id != req.sweep_id()) continue;
        pb::WatchSweepResponse r;
        *r.mutable_event() = EventMessage(*it);
        out.push_back(std::move(r));
      }
      pb::Sweep now = SweepMessage(s, false);
      for (auto& r : out) *r.mutable_sweep() = now;
      done = finished(now.state());
    }
    for (const auto& r : out) {
      if (!send(r)) return absl::OkStatus();
    }
    if (done || stop()) return absl::OkStatus();
  }
}

// ---------------------------------------------------------------------------------------------
// Worker API

absl::StatusOr<pb::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const pb::RegisterWorkerRequest& req) {
  if (req.name().empty()) return absl::InvalidArgumentError("name: must not be empty");
  if (req.max_cpu_trials() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_cpu_trials: ", req.max_cpu_trials(), " must be >= 0"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  WorkerRecord w;
  do {
    w.id = absl::StrCat("w-", next_worker_++);
  } while (workers_.count(w.id));
  w.name = req.name();
  w.address = req.address();
  for (const auto& g : req.gpus()) w.gpus.push_back({g.index(), g.memory_bytes(), g.name()});
  w.cpus = req.cpus();
  w.max_cpu_trials = req.max_cpu_trials() == 0 ? 1 : req.max_cpu_trials();
  for (const auto& [k, v] : req.labels()) w.labels[k] = v;
  w.registered_ms = w.last_heartbeat_ms = NowMs();
  Mutation m;
  m.op = "register";
  m.workers.push_back(w);
  ReleaseLeasesOfRestartedLocked(w, m);
  RETURN_IF_ERROR(CommitLocked(m));
  WorkerEntry& e = workers_[w.id];
  e.rec = w;
  e.last_seen = clock_->SteadyNow();
  pb::RegisterWorkerResponse resp;
  resp.set_worker_id(w.id);
  resp.set_lease_ttl_ms(options_.lease_ttl.count());
  resp.set_heartbeat_interval_ms(std::max<int64_t>(1, options_.lease_ttl.count() / 3));
  return resp;
}

absl::StatusOr<pb::HeartbeatResponse> Coordinator::Heartbeat(const pb::HeartbeatRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(TickLocked());
  auto wit = workers_.find(req.worker_id());
  if (wit == workers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("worker '", req.worker_id(), "' is not registered; register again"));
  }
  WorkerEntry& w = wit->second;
  const Steady now = clock_->SteadyNow();
  w.last_seen = now;
  w.rec.last_heartbeat_ms = NowMs();
  if (w.rec.lost) {
    w.rec.lost = false;
    Mutation m;
    m.op = "heartbeat";
    m.workers.push_back(w.rec);
    RETURN_IF_ERROR(CommitLocked(m));
  }
  pb::HeartbeatResponse resp;
  resp.set_lease_ttl_ms(options_.lease_ttl.count());
  std::set<std::string> told;  // leases a queued command already covers
  for (auto& c : w.commands) {
    told.insert(c.lease().lease_id());
    *resp.add_commands() = std::move(c);
  }
  w.commands.clear();
  for (const pb::LeaseProgress& p : req.leases()) {
    auto lit = leases_.find(p.lease().lease_id());
    if (lit == leases_.end() || lit->second.token != p.lease().fencing_token() ||
        lit->second.worker_id != req.worker_id()) {
      if (told.count(p.lease().lease_id())) continue;
      pb::WorkerCommand* c = resp.add_commands();
      c->set_kind(pb::WorkerCommand::FORGET_LEASE);
      *c->mutable_lease() = p.lease();
      c->set_reason("lease is no longer valid (expired, superseded or finished)");
      continue;
    }
    LeaseEntry& l = lit->second;
    expiry_.erase({l.expires, l.lease_id});
    l.expires = now + options_.lease_ttl;
    l.delivered = true;
    l.progress_epoch = p.epoch();
    l.progress_fraction = std::clamp(p.fraction(), 0.0, 1.0);
    expiry_.insert({l.expires, l.lease_id});
  }
  if (w.rec.draining) resp.add_commands()->set_kind(pb::WorkerCommand::DRAIN);
  return resp;
}

pb::Lease Coordinator::LeaseMessage(const LeaseEntry& l, const TrialEntry& t) const {
  pb::Lease m;
  m.set_lease_id(l.lease_id);
  m.set_fencing_token(l.token);
  m.set_trial_id(t.rec.id);
  m.set_sweep_id(t.rec.sweep_id);
  m.set_attempt(l.attempt);
  m.set_trial_config_json(t.rec.config_json);
  const AttemptRecord& a = t.attempts.back();
  m.set_resume_checkpoint(a.resume_checkpoint);
  m.set_resume_epoch(a.resume_epoch);
  m.set_gpus_per_node(t.rec.gpus_per_node);
  m.set_lease_ttl_ms(options_.lease_ttl.count());
  SetInitLeaseFields(t, m);
  if (t.rec.nodes > 1) {
    pb::Rendezvous* r = m.mutable_rendezvous();
    const auto& rank0 = workers_.find(a.worker_ids[0]);
    r->set_master_addr(rank0 == workers_.end() ? ""
                       : rank0->second.rec.address.empty() ? rank0->second.rec.name
                                                           : rank0->second.rec.address);
    // 0 for rank 0 itself (it picks the port); the others are handed their lease only once
    // rank 0 has reported it.
    const auto rank0_lease = leases_.find(a.lease_ids[0]);
    r->set_master_port(rank0_lease == leases_.end() ? 0 : rank0_lease->second.master_port);
    r->set_node_rank(l.rank);
    r->set_nnodes(t.rec.nodes);
    r->set_nproc_per_node(t.rec.gpus_per_node);
    r->set_world_size(t.rec.nodes * t.rec.gpus_per_node);
    for (const auto& w : a.worker_ids) r->add_worker_ids(w);
    r->set_single_step(a.worker_ids.size() == 1);
  }
  return m;
}

absl::StatusOr<pb::AcquireTrialResponse> Coordinator::AcquireTrial(
    const pb::AcquireTrialRequest& req) {
  if (req.max_trials() < 0 || req.free_gpus() < 0) {
    return absl::InvalidArgumentError("free_gpus and max_trials must be >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(TickLocked());
  auto wit = workers_.find(req.worker_id());
  if (wit == workers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("worker '", req.worker_id(), "' is not registered; register again"));
  }
  const Steady now = clock_->SteadyNow();
  wit->second.last_seen = now;
  wit->second.rec.last_heartbeat_ms = NowMs();
  Mutation m;
  m.op = "acquire";
  if (wit->second.rec.lost) {
    wit->second.rec.lost = false;
    m.workers.push_back(wit->second.rec);
  }
  const int want = req.max_trials() == 0 ? 1 : req.max_trials();
  pb::AcquireTrialResponse resp;
  // Gang leases granted while this worker was not asking come first, once the worker says it
  // has the GPUs free (its previous attempt's ranks may still be exiting); until then they wait,
  // and their TTL still runs.
  int free_gpus = req.free_gpus();
  for (const std::string& id : wit->second.leases) {
    LeaseEntry& l = leases_.at(id);
    if (l.delivered) continue;
    if (l.rank > 0 && RendezvousPortLocked(l) == 0) continue;  // rank 0 has not reported it yet
    const int need = trials_.at(l.trial_id).rec.gpus_per_node;
    if (need > free_gpus) continue;
    free_gpus -= need;
    l.delivered = true;
    *resp.add_leases() = LeaseMessage(l, trials_.at(l.trial_id));
  }
  if (wit->second.rec.draining) return resp;
  const int64_t now_ms = NowMs();
  while (resp.leases_size() < want) {
    const bool has_gpus = !wit->second.rec.gpus.empty();
    auto a = scheduler_->Next(req.worker_id(),
                              WorkerViews(req.worker_id(), req.free_gpus(), has_gpus));
    if (!a) break;
    if (!InitGateOpenLocked(a->trial_id, m)) continue;
    TrialEntry& t = trials_.at(a->trial_id);
    TrialRecord r = t.rec;
    r.state = TrialState::kRunning;
    r.attempts++;
    if (r.started_ms == 0) r.started_ms = now_ms;
    AttemptRecord at;
    at.trial_id = r.id;
    at.attempt = r.attempts;
    at.fencing_token = next_token_++;
    at.worker_ids = a->worker_ids;
    for (size_t rank = 0; rank < a->worker_ids.size(); ++rank)
      at.lease_ids.push_back(absl::StrCat("l-", at.fencing_token, "-", rank));
    at.started_ms = now_ms;
    at.resume_checkpoint = r.checkpoint_path;
    at.resume_epoch = r.checkpoint_epoch;
    queue_wait_->Observe({}, std::max<double>(0, (now_ms - r.queued_ms) / 1000.0));
    SetTrial(r);
    t.attempts.push_back(at);
    m.trials.push_back(r);
    m.attempts.push_back(at);
    AddEvent(m, r,
             absl::StrCat("attempt ", at.attempt, " leased to ", absl::StrJoin(at.worker_ids, ",")));
    m.op = "lease_grant";
    for (size_t rank = 0; rank < a->worker_ids.size(); ++rank) {
      LeaseEntry l;
      l.lease_id = at.lease_ids[rank];
      l.trial_id = r.id;
      l.attempt = at.attempt;
      l.token = at.fencing_token;
      l.worker_id = a->worker_ids[rank];
      l.rank = static_cast<int>(rank);
      l.expires = now + options_.lease_ttl;
      l.delivered = rank == 0;
      l.newest_point_known = true;  // a new attempt has stored nothing
      AddLease(l);
      if (rank == 0) *resp.add_leases() = LeaseMessage(l, t);
    }
  }
  RETURN_IF_ERROR(CommitLocked(m));
  return resp;
}

absl::StatusOr<Coordinator::LeaseEntry*> Coordinator::CheckLease(const pb::LeaseRef& ref) {
  auto it = leases_.find(ref.lease_id());
  if (it == leases_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease '", ref.lease_id(),
                     "' is not active (it expired, was cancelled or its trial finished)"));
  }
  if (it->second.token != ref.fencing_token()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease '", ref.lease_id(), "': fencing token ", ref.fencing_token(),
                     " is stale (current ", it->second.token, ")"));
  }
  // Any call carrying a valid lease renews it.
  LeaseEntry& l = it->second;
  expiry_.erase({l.expires, l.lease_id});
  l.expires = clock_->SteadyNow() + options_.lease_ttl;
  l.delivered = true;
  expiry_.insert({l.expires, l.lease_id});
  auto wit = workers_.find(l.worker_id);
  if (wit != workers_.end()) wit->second.last_seen = clock_->SteadyNow();
  return &l;
}

absl::StatusOr<pb::ReportMetricsResponse> Coordinator::ReportMetrics(
    const pb::ReportMetricsRequest& req) {
  for (int i = 0; i < req.points_size(); ++i) {
    if (req.points(i).name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("points[", i, "].name: must not be empty"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  TrialEntry& t = trials_.at(l->trial_id);
  if (!l->newest_point_known) {  // loaded at a restart: what did this attempt store already?
    ASSIGN_OR_RETURN(std::vector<MetricRecord> stored, store_->Metrics(t.rec.id, ""));
    for (const MetricRecord& p : stored) {
      if (p.attempt != l->attempt) continue;
      auto& newest = l->newest_point[p.name];
      newest = std::max(newest, std::make_pair(p.wall_ms, p.step));
    }
    l->newest_point_known = true;
  }
  Mutation m;
  m.op = "metrics";
  m.metrics.reserve(req.points_size());
  std::optional<double> best = t.rec.best_top1;
  for (const pb::MetricPoint& p : req.points()) {
    // At-least-once delivery: a point at or before the newest one stored under its name (same
    // wall time and step or older) was stored already; points without a wall time are kept.
    if (p.wall_ms() != 0) {
      auto it = l->newest_point.find(p.name());
      if (it != l->newest_point.end() && std::make_pair(p.wall_ms(), p.step()) <= it->second)
        continue;
    }
    m.metrics.push_back({t.rec.id, l->attempt, p.name(), p.step(), p.value(),
                         p.wall_ms() ? p.wall_ms() : NowMs()});
    if (p.name() == metric::kTop1 && std::isfinite(p.value()) && (!best || p.value() > *best))
      best = p.value();
  }
  TrialRecord r = t.rec;
  if (best != r.best_top1) {
    r.best_top1 = best;
    m.trials.push_back(r);
  }
  RETURN_IF_ERROR(CommitLocked(m));
  t.rec.best_top1 = best;
  for (const pb::MetricPoint& p : req.points()) {
    if (p.wall_ms() == 0) continue;
    auto& newest = l->newest_point[p.name()];
    newest = std::max(newest, std::make_pair(p.wall_ms(), p.step()));
  }
  for (MetricRecord& p : m.metrics) {
    auto& last = t.last_metrics[p.name];
    if (last.name.empty() || p.step >= last.step) last = p;
  }
  points_ingested_->Inc({}, static_cast<double>(m.metrics.size()));
  // Per-worker gauges from the trainer's throughput and GPU memory points.
  const auto w = workers_.find(l->worker_id);
  const std::string worker = w != workers_.end() && !w->second.rec.name.empty() ? w->second.rec.name
                                                                                  : l->worker_id;
  for (const pb::MetricPoint& p : req.points()) {
    if (!std::isfinite(p.value())) continue;
    if (p.name() == metric::kImagesPerSec) worker_images_gauge_->Set({worker}, p.value());
    if (p.name() == metric::kGpuMemoryBytes) worker_gpu_memory_gauge_->Set({worker}, p.value());
    if (p.name() == metric::kDataWaitMsPerStep) worker_data_wait_gauge_->Set({worker}, p.value());
  }
  pb::ReportMetricsResponse resp;
  resp.set_accepted(static_cast<int64_t>(m.metrics.size()));
  return resp;
}

int Coordinator::RendezvousPortLocked(const LeaseEntry& l) const {
  const TrialEntry& t = trials_.at(l.trial_id);
  if (t.attempts.empty() || t.attempts.back().lease_ids.empty()) return 0;
  const auto rank0 = leases_.find(t.attempts.back().lease_ids[0]);
  return rank0 == leases_.end() || rank0->second.token != l.token ? 0 : rank0->second.master_port;
}

absl::StatusOr<pb::ReportRendezvousResponse> Coordinator::ReportRendezvous(
    const pb::ReportRendezvousRequest& req) {
  if (req.master_port() < 1 || req.master_port() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("master_port: ", req.master_port(), " is out of range [1, 65535]"));
  }
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(TickLocked());
  ASSIGN_OR_RETURN(LeaseEntry * l, CheckLease(req.lease()));
  TrialLog& log = logs_[l->trial_id];
  const int64_t now = NowMs();
  for (const std::string& text : req.lines()) {
    pb::LogLine line;
    line.set_seq(log.next_seq++);
    line.set_time_ms(now);
    line.set_attempt(l->attempt);
    line.set_rank(req.rank());
    line.set_line(text.size() > 4096 ? text.substr(0, 4096) : text);
    log.lines.push_back(std::move(line));
  }
  while (static_cast<int64_t>(log.lines.size()) > kMaxLogLines) {
    log.lines.pop_front();
    ++log.dropped;
  }
  pb::ReportLogsResponse resp;
  resp.set_accepted(req.lines_size());
  return resp;
}

absl::StatusOr<pb::GetTrialLogsResponse> Coordinator::GetTrialLogs(
    const pb::GetTrialLogsRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = trials_.find(req.trial_id());
  if (t == trials_.end()) return absl::NotFoundError(absl::StrCat("trial ", req.trial_id()));
  const int64_t limit =
      req.limit() > 0 ? std::min<int64_t>(req.limit(), kMaxLogLines) : kMaxLogLines;
  pb::GetTrialLogsResponse resp;
  const TrialState s = t->second.rec.state;
  resp.set_trial_finished(s == TrialState::kSucceeded || s == TrialState::kFailed ||
                          s == TrialState::kCancelled);
  auto it = logs_.find(req.trial_id());
  if (it == logs_.end()) return resp;
  resp.set_last_seq(it->second.next_seq - 1);
  resp.set_dropped(it->second.dropped);
  for (const pb::LogLine& line : it->second.lines) {
    if (line.seq() <= req.after_seq()) continue;
    if (resp.lines_size() >= limit) break;
    *resp.add_lines() = line;
  }
  return resp;
}

absl::StatusOr<pb::ReportCheckpointResponse> Coordinator::ReportCheckpoint(
    const pb::ReportCheckpointRequest& req) {
  if (req.path().empty()) return absl::InvalidArgumentError("path: must not be empty");
  if (req.epoch() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("epoch: ", req.epoch(), " must be >= 0"));
  }
  std::lock_guard<std::mutex> lock(mu_);
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
  if (req.outcome_case() == pb::CompleteTrialRequest::OUTCOME_NOT_SET) {
    return absl::InvalidArgumentError("outcome: give result or failure");
  }
  std::lock_guard<std::mutex> lock(mu_);
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
    if (!r.best_top1 || res.top1() > *r.best_top1) r.best_top1 = res.top1();
    EndAttemptLocked(t, AttemptOutcome::kSucceeded, "", false, lease_id, m);
    RETURN_IF_ERROR(CommitLocked(m));  // on failure the state is reloaded from the store
  } else {
    const pb::TrialFailure& f = req.failure();
    const FailureKind kind = FailureKindOf(f);
    const std::string reason =
        f.reason().empty() ? "trial failed (no reason given)" : f.reason();
    t.attempts.back().failure_kind = kind;  // EndAttemptLocked copies the attempt
    EndAttemptLocked(t, AttemptOutcome::kFailed,
                     absl::StrCat(FailureKindName(kind), ": ", reason), FailureIsRetried(kind),
                     lease_id, m);
    RETURN_IF_ERROR(CommitLocked(m));
  }
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
  attempts_total_->Inc({AttemptOutcomeName(outcome)});
  if (outcome == AttemptOutcome::kSucceeded) {
    trial_duration_->Observe({}, std::max<double>(0, (now_ms - a.started_ms) / 1000.0));
  }
  for (size_t rank = 0; rank < a.lease_ids.size(); ++rank) {
    const std::string& id = a.lease_ids[rank];
    auto lit = leases_.find(id);
    if (lit == leases_.end()) continue;
    if (id != reporting_lease) {
      auto wit = workers_.find(lit->second.worker_id);
      if (wit != workers_.end() && !wit->second.rec.lost) {
        pb::WorkerCommand c;
        c.set_kind(outcome == AttemptOutcome::kCancelled ? pb::WorkerCommand::CANCEL_TRIAL
                                                         : pb::WorkerCommand::FORGET_LEASE);
        c.mutable_lease()->set_lease_id(id);
        c.mutable_lease()->set_fencing_token(lit->second.token);
        c.set_trial_id(t.rec.id);
        c.set_reason(reason.empty() ? "attempt ended" : reason);
        wit->second.commands.push_back(std::move(c));
      }
    }
    DropLease(id);
  }
  TrialRecord r = t.rec;
  switch (outcome) {
    case AttemptOutcome::kSucceeded:
      r.state = TrialState::kSucceeded;
      r.error.clear();
      r.finished_ms = now_ms;
      break;
    case AttemptOutcome::kCancelled:
      r.state = TrialState::kCancelled;
      r.finished_ms = now_ms;
      break;
    default: {
      r.error = reason;
      const int max_attempts = sweeps_.at(r.sweep_id).rec.max_attempts;
      if (retry && r.attempts - r.retry_base < max_attempts) {
        r.state = TrialState::kQueued;
        r.queued_ms = now_ms;
      } else {
        r.state = TrialState::kFailed;
        r.finished_ms = now_ms;
      }
    }
  }
  SetTrial(r);
  if (Terminal(r.state)) InitSourceEndedLocked(r, m);
  const std::chrono::milliseconds delay =
      r.state == TrialState::kQueued ? RetryDelay(t) : std::chrono::milliseconds(0);
  if (r.state == TrialState::kQueued) QueueLocked(r, clock_->SteadyNow() + delay);
  m.trials.push_back(r);
  std::string msg = absl::StrCat("attempt ", a.attempt, " ", AttemptOutcomeName(outcome));
  if (!reason.empty()) absl::StrAppend(&msg, ": ", reason);
  if (r.state == TrialState::kQueued) {
    absl::StrAppend(&msg, "; re-queued");
    if (delay.count() > 0)
      absl::StrAppend(&msg, absl::StrFormat(", leased again in %g s (retry backoff)",
                                            delay.count() / 1000.0));
  }
  AddEvent(m, r, msg);
}

absl::Status Coordinator::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  return TickLocked();
}

std::chrono::milliseconds Coordinator::RetryDelay(const TrialEntry& t) const {
  if (options_.retry_backoff.count() <= 0) return std::chrono::milliseconds(0);
  int failures = 0;  // failed attempts in a row, newest first
  for (auto a = t.attempts.rbegin(); a != t.attempts.rend(); ++a) {
    if (a->outcome != AttemptOutcome::kFailed ||
        (a->failure_kind && !FailureBacksOff(*a->failure_kind)))
      break;
    ++failures;
  }
  if (failures == 0) return std::chrono::milliseconds(0);
  std::chrono::milliseconds d = options_.retry_backoff;
  for (int i = 1; i < failures && d < options_.retry_backoff_max; ++i) d *= 2;
  return std::min(d, options_.retry_backoff_max);
}

void Coordinator::QueueLocked(const TrialRecord& t, Steady at) {
  TrialEntry& e = trials_.at(t.id);
  UnholdLocked(e);
  if (at <= clock_->SteadyNow()) {
    scheduler_->Enqueue(QueuedOf(t));
    return;
  }
  held_.insert({at, t.id});
  e.held_until = at;
}

void Coordinator::UnholdLocked(TrialEntry& t) {
  if (!t.held_until) return;
  held_.erase({*t.held_until, t.rec.id});
  t.held_until.reset();
}

absl::Status Coordinator::TickLocked() {
  const Steady now = clock_->SteadyNow();
  while (!held_.empty() && held_.begin()->first <= now) {
    TrialEntry& t = trials_.at(held_.begin()->second);
    UnholdLocked(t);
    scheduler_->Enqueue(QueuedOf(t.rec));  // held trials are queued: cancelling unholds
  }
  Mutation m;
  m.op = "tick";
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    const std::string id = expiry_.begin()->second;
    const LeaseEntry l = leases_.at(id);
    lease_expirations_->Inc();
    TrialEntry& t = trials_.at(l.trial_id);
    EndAttemptLocked(t, AttemptOutcome::kExpired,
                     absl::StrCat("lease ", id, " on worker ", l.worker_id, " expired (no heartbeat for ",
                                  options_.lease_ttl.count(), " ms)"),
                     true, "", m);
  }
  for (auto& [id, w] : workers_) {
    if (!w.rec.lost && now - w.last_seen > options_.lease_ttl) {
      w.rec.lost = true;
      m.workers.push_back(w.rec);
    }
  }
  if (m.empty()) return absl::OkStatus();
  return CommitLocked(m);
}

absl::StatusOr<int64_t> Coordinator::PruneEvents(std::chrono::hours retention) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_->PruneEvents(NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(
                                           retention).count());
}

void Coordinator::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  events_cv_.notify_all();
}

void Coordinator::CollectMetrics() {
  std::lock_guard<std::mutex> lock(mu_);
  static const char* kSweepStates[] = {"queued", "running", "succeeded", "failed", "cancelled"};
  std::map<LabelValues, double> sweeps, trials, workers, top1;
  for (const char* s : kSweepStates) sweeps[{s}] = 0;
  for (int s = 1; s <= 5; ++s) trials[{TrialStateName(static_cast<TrialState>(s))}] = 0;
  for (const char* s : {"alive", "draining", "lost"}) workers[{s}] = 0;
  std::map<LabelValues, std::pair<double, int>> sums;
  for (const auto& [id, s] : sweeps_) {
    sweeps[{kSweepStates[SweepStateOf(s.rec, s.counts) - 1]}] += 1;
    for (int st = 1; st <= 5; ++st)
      trials[{TrialStateName(static_cast<TrialState>(st))}] += static_cast<double>(s.counts[st]);
    if (s.counts[static_cast<int>(TrialState::kSucceeded)] == 0) continue;
    for (int64_t tid : s.trial_ids) {
      const TrialRecord& t = trials_.at(tid).rec;
      if (t.state != TrialState::kSucceeded || !t.final_top1) continue;
      auto& acc = sums[{absl::StrCat(id), t.network, absl::StrCat(t.width),
                        absl::StrCat(t.wbits), absl::StrCat(t.abits)}];
      acc.first += *t.final_top1;
      acc.second++;
    }
  }
  for (const auto& [k, v] : sums) top1[k] = v.first / v.second;
  for (const auto& [id, w] : workers_)
    workers[{w.rec.lost ? "lost" : w.rec.draining ? "draining" : "alive"}] += 1;
  sweeps_gauge_->Replace(std::move(sweeps));
  trials_gauge_->Replace(std::move(trials));
  workers_gauge_->Replace(std::move(workers));
  top1_gauge_->Replace(std::move(top1));
}

}  // namespace wrpn::server
