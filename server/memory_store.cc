#include "server/memory_store.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace wrpn::server {

const char* TrialStateName(TrialState s) {
  switch (s) {
    case TrialState::kQueued: return "queued";
    case TrialState::kRunning: return "running";
    case TrialState::kSucceeded: return "succeeded";
    case TrialState::kFailed: return "failed";
    case TrialState::kCancelled: return "cancelled";
    case TrialState::kPruned: return "pruned";
  }
  return "unknown";
}

const char* AttemptOutcomeName(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kRunning: return "running";
    case AttemptOutcome::kSucceeded: return "succeeded";
    case AttemptOutcome::kFailed: return "failed";
    case AttemptOutcome::kExpired: return "expired";
    case AttemptOutcome::kCancelled: return "cancelled";
    case AttemptOutcome::kRung: return "rung";
  }
  return "unknown";
}

absl::Status MemoryStore::Apply(const Mutation& m) {
  // Check references first so that nothing is applied when one is missing.
  auto has_sweep = [&](int64_t id) {
    if (sweeps_.count(id)) return true;
    return std::any_of(m.sweeps.begin(), m.sweeps.end(),
                       [&](const SweepRecord& s) { return s.id == id; });
  };
  auto has_trial = [&](int64_t id) {
    if (trials_.count(id)) return true;
    return std::any_of(m.trials.begin(), m.trials.end(),
                       [&](const TrialRecord& t) { return t.id == id; });
  };
  for (const auto& t : m.trials) {
    if (!has_sweep(t.sweep_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("trial ", t.id, " references missing sweep ", t.sweep_id));
    }
  }
  for (const auto& a : m.attempts) {
    if (!has_trial(a.trial_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("attempt references missing trial ", a.trial_id));
    }
  }
  for (const auto& p : m.metrics) {
    if (!has_trial(p.trial_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("metric references missing trial ", p.trial_id));
    }
  }
  for (const auto& c : m.checkpoints) {
    if (!has_trial(c.trial_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint references missing trial ", c.trial_id));
    }
  }
  for (const auto& d : m.rung_decisions) {
    if (!has_sweep(d.sweep_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("rung decision references missing sweep ", d.sweep_id));
    }
  }
  for (const auto& s : m.sweeps) sweeps_[s.id] = s;
  for (const auto& t : m.trials) trials_[t.id] = t;
  for (const auto& a : m.attempts) attempts_[{a.trial_id, a.attempt}] = a;
  for (const auto& w : m.workers) workers_[w.id] = w;
  metrics_.insert(metrics_.end(), m.metrics.begin(), m.metrics.end());
  checkpoints_.insert(checkpoints_.end(), m.checkpoints.begin(), m.checkpoints.end());
  events_.insert(events_.end(), m.events.begin(), m.events.end());
  for (const auto& d : m.rung_decisions) rung_decisions_[{d.sweep_id, d.rung}] = d;
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStore::Load() {
  Snapshot s;
  for (const auto& [_, v] : sweeps_) s.sweeps.push_back(v);
  for (const auto& [_, v] : trials_) s.trials.push_back(v);
  for (const auto& [_, v] : attempts_) s.attempts.push_back(v);
  for (const auto& [_, v] : workers_) s.workers.push_back(v);
  s.checkpoints = checkpoints_;
  std::stable_sort(s.checkpoints.begin(), s.checkpoints.end(),
                   [](const CheckpointRecord& a, const CheckpointRecord& b) {
                     return std::tie(a.trial_id, a.attempt, a.epoch) <
                            std::tie(b.trial_id, b.attempt, b.epoch);
                   });
  for (const auto& [_, v] : rung_decisions_) s.rung_decisions.push_back(v);
  for (const auto& e : events_) s.max_event_seq = std::max(s.max_event_seq, e.seq);
  s.metric_count = static_cast<int64_t>(metrics_.size());
  return s;
}

absl::StatusOr<std::vector<MetricRecord>> MemoryStore::Metrics(int64_t trial_id,
                                                               std::string_view name) {
  std::vector<MetricRecord> out;
  for (const auto& p : metrics_) {
    if (p.trial_id == trial_id && (name.empty() || p.name == name)) out.push_back(p);
  }
  return out;
}

absl::StatusOr<std::vector<EventRecord>> MemoryStore::Events(int64_t sweep_id, int64_t after_seq,
                                                             int limit) {
  std::vector<EventRecord> out;
  for (const auto& e : events_) {
    if ((sweep_id == 0 || e.sweep_id == sweep_id) && e.seq > after_seq) out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const EventRecord& a, const EventRecord& b) { return a.seq < b.seq; });
  if (limit >= 0 && out.size() > static_cast<size_t>(limit)) out.resize(limit);
  return out;
}

absl::StatusOr<int64_t> MemoryStore::PruneEvents(int64_t before_ms) {
  auto it = std::remove_if(events_.begin(), events_.end(),
                           [&](const EventRecord& e) { return e.time_ms < before_ms; });
  int64_t n = events_.end() - it;
  events_.erase(it, events_.end());
  return n;
}

absl::Status MemoryStore::PutPaperTables(const PaperTables& tables) {
  if (tables.version != paper_.version) paper_ = tables;
  return absl::OkStatus();
}

absl::StatusOr<PaperTables> MemoryStore::GetPaperTables() { return paper_; }

}  // namespace wrpn::server
