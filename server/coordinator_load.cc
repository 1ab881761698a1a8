// Restart recovery (Coordinator methods): the working set rebuilt from the store's snapshot at
// Create and after a failed write. Live leases get their full TTL again from now, silent workers
// a full TTL from the restart, and a retry backoff that was running goes on from the failed
// attempt's end. Runs under the coordinator's mutex.
#include <algorithm>

#include "common/gpu_share.h"
#include "common/status.h"
#include "server/coordinator.h"

namespace wrpn::server {

absl::Status Coordinator::LoadLocked() {
  ASSIGN_OR_RETURN(Snapshot snap, store_->Load());
  sweeps_.clear();
  trials_.clear();
  leases_.Clear();
  held_.Clear();
  scheduler_ = std::make_unique<PriorityScheduler>();
  init_deps_ = InitDependencies();
  const SteadyTime now = clock_->SteadyNow();
  workers_.Load(std::move(snap.workers), now);  // silent workers get a full TTL from the restart
  LoadTrialsLocked(snap);
  for (const auto& [id, s] : sweeps_) IndexInitDependenciesLocked(s);
  RETURN_IF_ERROR(LoadParetoLocked(snap));
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
  const TrialRecord& t = trials_.at(a.trial_id).rec;
  for (LeaseEntry& l : AttemptLeases(a, t, now + options_.lease_ttl)) {
    l.delivered = true;
    if (l.gpu_slots.empty()) l.gpu_slots = FirstFitSlotsLocked(l, t);
    leases_.Add(std::move(l));
  }
}

// GPU slots for a lease of an attempt stored before attempts recorded them (migration 4): the
// lowest GPUs of its worker the trial fits on now.
std::vector<int> Coordinator::FirstFitSlotsLocked(const LeaseEntry& l, const TrialRecord& t) const {
  const WorkerEntry* w = workers_.Find(l.worker_id);
  if (w == nullptr || (t.gpus_per_node == 0 && t.gpu_share_units == 0)) return {};
  const GpuLedger::Holding h{t.id, t.sweep_id,
                             t.gpu_share_units > 0 ? t.gpu_share_units : kGpuShareUnits,
                             t.gpu_memory_bytes};
  return leases_.gpus().FirstFit(l.worker_id, w->rec.gpus.size(),
                                 t.gpu_share_units > 0 ? 1 : t.gpus_per_node, h);
}

void Coordinator::RequeueLoadedLocked(SteadyTime now) {
  const int64_t now_ms = NowMs();
  for (auto& [id, t] : trials_) {
    if (t.rec.state != TrialState::kQueued || pareto_.Parked(id)) continue;
    // A backoff that was running at the restart runs on from the failed attempt's end.
    const int64_t left_ms =
        t.attempts.empty() ? 0 : t.attempts.back().ended_ms + RetryDelayOf(t).count() - now_ms;
    QueueLocked(t.rec, now + std::chrono::milliseconds(std::max<int64_t>(0, left_ms)));
  }
}

}  // namespace wrpn::server
