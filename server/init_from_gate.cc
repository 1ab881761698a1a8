// The coordinator's side of recipe.init_from: fp32 (server/init_dependencies.h): dependents are
// taken out of the scheduler while their FP32 trial is queued or running (pending reason
// "waiting for trial N: fp32 initialisation"), put back when it succeeds, and failed when it
// fails or is cancelled; their leases carry its final checkpoint, and its lease says to keep it.
// Runs under the coordinator's mutex.
#include "absl/strings/str_cat.h"
#include "server/coordinator.h"

namespace wrpn::server {

void Coordinator::IndexInitDependenciesLocked(const SweepEntry& s) {
  std::vector<const TrialRecord*> trials;
  trials.reserve(s.trial_ids.size());
  for (int64_t id : s.trial_ids) trials.push_back(&trials_.at(id).rec);
  init_deps_.AddSweep(trials);
}

void Coordinator::FailInitDependentLocked(TrialEntry& t, const std::string& reason, Mutation& m) {
  scheduler_->Remove(t.rec.id);
  UnholdLocked(t);
  init_parked_.erase(t.rec.id);
  TrialRecord r = t.rec;
  r.state = TrialState::kFailed;
  r.error = reason;
  r.finished_ms = NowMs();
  SetTrial(r);
  m.trials.push_back(r);
  AddEvent(m, r, reason);
}

bool Coordinator::InitGateOpenLocked(int64_t trial_id, Mutation& m) {
  const int64_t source = init_deps_.SourceOf(trial_id);
  if (source == 0) return true;
  const InitDecision d = DecideInit(trials_.at(source).rec);
  if (d.gate == InitGate::kReady) return true;
  if (d.gate == InitGate::kWait) {
    init_parked_.insert(trial_id);
  } else {
    FailInitDependentLocked(trials_.at(trial_id), d.reason, m);
  }
  return false;
}

void Coordinator::InitSourceEndedLocked(const TrialRecord& source, Mutation& m) {
  const InitDecision d = DecideInit(source);
  if (d.gate == InitGate::kWait) return;
  for (int64_t id : init_deps_.DependentsOf(source.id)) {
    TrialEntry& t = trials_.at(id);
    if (t.rec.state != TrialState::kQueued) continue;
    if (d.gate == InitGate::kFail) {
      FailInitDependentLocked(t, d.reason, m);
    } else if (init_parked_.erase(id) > 0) {
      scheduler_->Enqueue(QueuedOf(t.rec));
    }
  }
}

std::string Coordinator::InitPendingReason(const TrialRecord& t) const {
  const int64_t source = init_deps_.SourceOf(t.id);
  if (source == 0) return "";
  const InitDecision d = DecideInit(trials_.at(source).rec);
  return d.gate == InitGate::kReady ? "" : d.reason;
}

void Coordinator::SetInitLeaseFields(const TrialEntry& t, pb::Lease& m) const {
  if (init_deps_.HasDependents(t.rec.id)) m.set_keep_checkpoint(true);
  if (const int64_t source = init_deps_.SourceOf(t.rec.id)) {
    m.set_init_checkpoint(trials_.at(source).rec.checkpoint_path);
  }
}

}  // namespace wrpn::server
