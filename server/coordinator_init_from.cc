// The coordinator's side of recipe.init_from: fp32 (server/init_dependencies.h): dependents are
// parked (out of the scheduler) while their FP32 trial is queued or running, with the pending
// reason "waiting for trial N: fp32 initialisation"; they are queued again when it succeeds and
// failed when it fails. Their leases carry its final checkpoint, and its lease says to keep it.
// Runs under the coordinator's mutex.
#include "server/coordinator.h"
#include "server/trial_transitions.h"

namespace wrpn::server {

void Coordinator::IndexInitDependenciesLocked(const SweepEntry& s) {
  std::vector<const TrialRecord*> trials;
  trials.reserve(s.trial_ids.size());
  for (int64_t id : s.trial_ids) trials.push_back(&trials_.at(id).rec);
  init_deps_.AddSweep(trials);
}

void Coordinator::FailInitDependentLocked(TrialEntry& t, const std::string& reason, Mutation& m) {
  scheduler_->Remove(t.rec.id);
  held_.Release(t.rec.id);
  init_deps_.Unpark(t.rec.id);
  const TrialRecord r = FailedWhileQueued(t.rec, reason, NowMs());
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
    init_deps_.Park(trial_id);
  } else {
    FailInitDependentLocked(trials_.at(trial_id), d.reason, m);
  }
  return false;
}

void Coordinator::InitSourceEndedLocked(const TrialRecord& source, Mutation& m) {
  // A cancelled source was cancelled with its sweep, which cancels the dependents too.
  if (source.state == TrialState::kCancelled) return;
  const InitDecision d = DecideInit(source);
  if (d.gate == InitGate::kWait) return;
  for (int64_t id : init_deps_.DependentsOf(source.id)) {
    TrialEntry& t = trials_.at(id);
    if (t.rec.state != TrialState::kQueued) continue;
    if (d.gate == InitGate::kFail) {
      FailInitDependentLocked(t, d.reason, m);
    } else if (init_deps_.Unpark(id)) {
      scheduler_->Enqueue(QueuedOf(t.rec));
    }
  }
}

std::string Coordinator::InitPendingReasonLocked(const TrialRecord& t) const {
  const int64_t source = init_deps_.SourceOf(t.id);
  if (source == 0) return "";
  const InitDecision d = DecideInit(trials_.at(source).rec);
  return d.gate == InitGate::kReady ? "" : d.reason;
}

void Coordinator::SetInitLeaseFieldsLocked(const TrialEntry& t, LeaseContext& ctx) const {
  ctx.keep_checkpoint = init_deps_.HasDependents(t.rec.id);
  if (const int64_t source = init_deps_.SourceOf(t.rec.id)) {
    ctx.init_checkpoint = trials_.at(source).rec.checkpoint_path;
  }
}

}  // namespace wrpn::server
