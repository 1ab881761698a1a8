// The coordinator's side of Pareto-pruned sweeps (search.mode: pareto, docs/pareto.md,
// server/pareto_sweeps.h). A trial's lease says how far it trains (its target rung's epoch);
// an attempt that stops there ends without counting against max_attempts and parks the trial
// ("waiting for rung 1 (epoch 2): ..."). When the rung is ready (server/pareto_rung.h,
// RungReady) it is decided in one Mutation (op "rung_decision", crash points
// rung_decision.uncommitted / .committed) with the decision row, an event in the sweep's history
// and the parked trials promoted (queued to the next rung or the end) or pruned. Reports after
// the decision extend it (ExtendRung) the same way. Runs under the coordinator's mutex.
#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/trainer_protocol.h"
#include "server/coordinator.h"
#include "server/trial_transitions.h"

namespace wrpn::server {
namespace {

std::string RungName(int rung, int64_t epoch) {
  return absl::StrCat("rung ", rung + 1, " (epoch ", epoch, ")");
}

// "rung 1 (epoch 2) decided: 9 of 13 cells promoted (margin 0.62 points, auto); all 26 live
// trials reported; pruned: lenet5 1x w1/a1 wrpn at 87.06 (seeds 86.62, 87.50), ..."
std::string DecisionMessage(int rung, int64_t epoch, const RungDecision& d, bool automatic,
                            const std::string& why) {
  int promoted = 0;
  std::vector<std::string> pruned;
  for (const CellVerdict& c : d.cells) {
    if (c.promoted) {
      ++promoted;
    } else {
      pruned.push_back(absl::StrFormat("%s at %.2f (%.2f below the front)", c.cell, c.top1, c.gap));
    }
  }
  std::string msg = absl::StrFormat("%s decided: %d of %d cells promoted (margin %.2f points%s); %s",
                                    RungName(rung, epoch), promoted, d.cells.size(), d.margin,
                                    automatic ? ", auto" : "", why);
  if (!pruned.empty()) absl::StrAppend(&msg, "; pruned: ", absl::StrJoin(pruned, ", "));
  return msg;
}

}  // namespace

std::vector<const TrialRecord*> Coordinator::SweepTrialsLocked(int64_t sweep_id) const {
  std::vector<const TrialRecord*> out;
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end()) return out;
  out.reserve(it->second.trial_ids.size());
  for (int64_t id : it->second.trial_ids) out.push_back(&trials_.at(id).rec);
  return out;
}

absl::StatusOr<std::optional<MetricRecord>> Coordinator::RungTop1Locked(TrialEntry& t,
                                                                        int64_t epoch) {
  const std::string name(metric::kTop1);
  if (auto it = t.last_metrics.find(name); it != t.last_metrics.end() && it->second.step == epoch - 1)
    return std::optional<MetricRecord>(it->second);
  ASSIGN_OR_RETURN(std::vector<MetricRecord> points, store_->Metrics(t.rec.id, name));
  std::optional<MetricRecord> found;
  for (const MetricRecord& p : points)
    if (p.step == epoch - 1) found = p;  // the latest attempt's
  return found;
}

absl::Status Coordinator::LoadParetoLocked(const Snapshot& snap) {
  pareto_ = ParetoSweeps();
  for (const auto& [id, s] : sweeps_) pareto_.AddSweep(s.rec);
  for (const RungDecisionRecord& r : snap.rung_decisions) RETURN_IF_ERROR(pareto_.LoadDecision(r));
  for (auto& [id, t] : trials_) {
    const int64_t sweep = t.rec.sweep_id;
    if (!pareto_.IsPareto(sweep)) continue;
    for (int r = 0; r < pareto_.RungCount(sweep); ++r) {
      const int64_t epoch = pareto_.RungEpoch(sweep, r);
      if (t.rec.checkpoint_epoch < epoch) break;
      ASSIGN_OR_RETURN(std::optional<MetricRecord> top1, RungTop1Locked(t, epoch));
      if (top1) pareto_.RecordReport(t.rec, r, top1->value, top1->wall_ms);
    }
    const int target = pareto_.TargetRung(t.rec);
    if (t.rec.state == TrialState::kQueued && target != ParetoSweeps::kToTheEnd &&
        pareto_.HasReport(id, target)) {
      pareto_.Park(id, sweep, target);
    }
  }
  pareto_reevaluate_ = true;
  return absl::OkStatus();
}

bool Coordinator::ReachedRungLocked(TrialEntry& t, const std::string& reporting_lease,
                                    Mutation& m) {
  const int64_t sweep = t.rec.sweep_id;
  const int rung = pareto_.RungOfEpoch(sweep, t.rec.checkpoint_epoch);
  if (rung < 0) return false;
  const int target = pareto_.TargetRung(t.rec);
  if (target == ParetoSweeps::kToTheEnd || target < rung) return false;
  absl::StatusOr<std::optional<MetricRecord>> top1 = RungTop1Locked(t, t.rec.checkpoint_epoch);
  if (!top1.ok() || !top1->has_value()) return false;  // no top-1 to judge it by: a failure
  const int64_t now_ms = NowMs();
  AttemptRecord& a = t.attempts.back();
  a.outcome = AttemptOutcome::kRung;
  a.failure_kind.reset();  // the worker said interrupted; it is no failure
  a.ended_ms = now_ms;
  a.reason = absl::StrFormat("reached %s: top-1 %.2f", RungName(rung, t.rec.checkpoint_epoch),
                             (*top1)->value);
  m.attempts.push_back(a);
  metrics_.attempts_total->Inc({AttemptOutcomeName(a.outcome)});
  ReleaseAttemptLeasesLocked(t, a, a.outcome, a.reason, reporting_lease);
  const TrialRecord r = ReachedRung(t.rec, now_ms);
  SetTrial(r);
  m.trials.push_back(r);
  pareto_.RecordReport(r, rung, (*top1)->value, now_ms);
  AddEvent(m, r, absl::StrCat("attempt ", a.attempt, " ", a.reason));
  if (target > rung) {  // promoted while it ran to this rung
    QueueLocked(r, clock_->SteadyNow());
    return true;
  }
  pareto_.Park(r.id, sweep, rung);
  EvaluateRungLocked(sweep, rung, m);
  return true;
}

void Coordinator::EvaluateRungLocked(int64_t sweep_id, int rung, Mutation& m) {
  if (rung < 0 || rung >= pareto_.RungCount(sweep_id)) return;
  const std::vector<RungTrial> trials = pareto_.RungTrials(SweepTrialsLocked(sweep_id), rung);
  const std::optional<RungDecision>& decided = pareto_.Decision(sweep_id, rung);
  const int64_t epoch = pareto_.RungEpoch(sweep_id, rung);
  RungDecision d;
  if (decided) {
    d = ExtendRung(*decided, trials);
  } else {
    const SearchSpec& search = *pareto_.Search(sweep_id);
    const RungReadiness ready = RungReady(trials, PolicyOf(search), *clock_);
    pareto_.SetWaitReason(sweep_id, rung, ready.why, ready.ready ? 0 : ready.decide_at_ms);
    if (!ready.ready) return;
    d = DecideRung(trials, MarginOf(search));
    m.events.push_back({events_.NextSeq(), NowMs(), sweep_id, 0, 0, 0,
                        DecisionMessage(rung, epoch, d, search.margin_auto, ready.why)});
    metrics_.rung_decisions->Inc();
    m.op = "rung_decision";
  }
  m.rung_decisions.push_back(pareto_.SetDecision(sweep_id, rung, d, NowMs()));
  ApplyRungDecisionLocked(sweep_id, rung, d, m);
}

void Coordinator::ApplyRungDecisionLocked(int64_t sweep_id, int rung, const RungDecision& d,
                                          Mutation& m) {
  const std::string at = RungName(rung, pareto_.RungEpoch(sweep_id, rung));
  for (int64_t id : d.promoted) {
    if (!pareto_.Unpark(id)) continue;
    TrialEntry& t = trials_.at(id);
    const int64_t next = pareto_.StopEpoch(t.rec);
    QueueLocked(t.rec, clock_->SteadyNow());
    AddEvent(m, t.rec, absl::StrCat("promoted at ", at, ": on to ",
                                    next == 0 ? std::string("the end") : absl::StrCat("epoch ", next)));
  }
  for (const PrunedTrial& p : d.pruned) {
    if (!pareto_.Unpark(p.trial_id)) continue;
    TrialEntry& t = trials_.at(p.trial_id);
    const TrialRecord r = PrunedAtRung(t.rec, p.top1, p.epoch, NowMs());
    SetTrial(r);
    m.trials.push_back(r);
    AddEvent(m, r, absl::StrFormat("pruned at %s: top-1 %.2f, its cell off the accuracy/cost front "
                                   "by more than the margin (%.2f points)",
                                   at, p.top1, d.margin));
  }
}

void Coordinator::EvaluateDueRungsLocked(Mutation& m) {
  const int64_t next = pareto_.NextDecisionMs();
  if (!pareto_reevaluate_ && (next == 0 || NowMs() < next)) return;
  pareto_reevaluate_ = false;
  for (const auto& [sweep, rung] : pareto_.UndecidedRungs()) EvaluateRungLocked(sweep, rung, m);
}

bool Coordinator::ParetoGateOpenLocked(int64_t trial_id, Mutation& m) {
  TrialEntry& t = trials_.at(trial_id);
  const int64_t sweep = t.rec.sweep_id;
  if (!pareto_.IsPareto(sweep)) return true;
  const int target = pareto_.TargetRung(t.rec);
  if (target == ParetoSweeps::kToTheEnd || !pareto_.HasReport(trial_id, target)) return true;
  pareto_.Park(trial_id, sweep, target);
  EvaluateRungLocked(sweep, target, m);
  return false;
}

void Coordinator::ResumePrunedLocked(TrialEntry& t, Mutation& m) {
  const int64_t pruned_epoch = t.rec.pruned_epoch;
  const int rung = pareto_.RungOfEpoch(t.rec.sweep_id, pruned_epoch);
  if (rung >= 0) m.rung_decisions.push_back(pareto_.Resume(t.rec.sweep_id, rung, t.rec.id));
  const TrialRecord r = ResumedFromPruned(t.rec, NowMs());
  SetTrial(r);
  QueueLocked(r, clock_->SteadyNow());
  m.trials.push_back(r);
  AddEvent(m, r, absl::StrCat("resumed to the end by retry --pruned (pruned at epoch ",
                              pruned_epoch, ")"));
}

}  // namespace wrpn::server
