#pragma once
// The coordinator's bookkeeping for Pareto-pruned sweeps (search.mode: pareto, docs/pareto.md):
// per sweep its rungs, the decision of each rung (server/pareto_rung.h), every trial's top-1 at
// each rung it reached, and which trials are parked at a rung waiting for its decision. From
// these it answers the questions the coordinator asks: how far a trial trains next (its lease's
// stop_at_epoch), what a rung's trials look like to the rung rule, and what a decision changes.
//
// Everything here is derived from stored state, so a restart rebuilds it: the sweep's spec, the
// rung_decisions rows (store.h RungDecisionRecord), the trials' checkpoint epochs and their
// `top1` metric points. A trial's target rung is the first rung that has no decision yet or whose
// decision did not promote it; past the last rung (or resumed by `retry --pruned`) it trains to
// the end. Not thread-safe; the coordinator serialises calls (under its lock).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/search_spec.h"
#include "server/pareto_rung.h"
#include "server/store.h"

namespace wrpn::server {

// The grid cell of a trial as the rung rule and the events name it: "lenet5 2x w2/a4 wrpn".
std::string ParetoCellKey(const TrialRecord& t);

class ParetoSweeps {
 public:
  static constexpr int kToTheEnd = -1;  // a target rung past every rung

  // Registers a sweep whose spec_json has search.mode pareto; other sweeps are ignored (false).
  bool AddSweep(const SweepRecord& s);
  bool IsPareto(int64_t sweep_id) const { return sweeps_.count(sweep_id) > 0; }
  // The sweep's search section; null for a sweep that is not a pareto one.
  const SearchSpec* Search(int64_t sweep_id) const;
  // A stored decision (at load). Errors name the row and the field.
  [[nodiscard]] absl::Status LoadDecision(const RungDecisionRecord& r);

  // The rung index of `epoch` in the sweep's rungs, -1 when it is none.
  int RungOfEpoch(int64_t sweep_id, int64_t epoch) const;
  int64_t RungEpoch(int64_t sweep_id, int rung) const;
  int RungCount(int64_t sweep_id) const;
  // The rung `t` trains to next, or kToTheEnd.
  int TargetRung(const TrialRecord& t) const;
  // Its lease's stop_at_epoch: the target rung's epoch, 0 = the end (also for grid sweeps).
  int64_t StopEpoch(const TrialRecord& t) const;

  // `t` reached `rung` with `top1` (its top-1 metric after that many epochs) at `ms`.
  void RecordReport(const TrialRecord& t, int rung, double top1, int64_t ms);
  bool HasReport(int64_t trial_id, int rung) const;

  // The trials of a rung as the rung rule sees them: every trial of the sweep that was promoted
  // at all earlier rungs and not resumed to the end before this one. A trial with a report here
  // is kReported whatever it did since; otherwise failed, cancelled or pending by its state.
  std::vector<RungTrial> RungTrials(const std::vector<const TrialRecord*>& sweep_trials,
                                    int rung) const;
  const std::optional<RungDecision>& Decision(int64_t sweep_id, int rung) const;
  // Installs a decision (new or extended) and returns its row to store.
  RungDecisionRecord SetDecision(int64_t sweep_id, int rung, RungDecision d, int64_t decided_ms);
  // `retry --pruned`: the trial pruned at `rung` trains to the end from now on; returns the
  // rung's row to store.
  RungDecisionRecord Resume(int64_t sweep_id, int rung, int64_t trial_id);

  // Trials at their target rung waiting for its decision: queued but out of the scheduler.
  void Park(int64_t trial_id, int64_t sweep_id, int rung) { parked_[trial_id] = {sweep_id, rung}; }
  bool Unpark(int64_t trial_id) { return parked_.erase(trial_id) > 0; }
  bool Parked(int64_t trial_id) const { return parked_.count(trial_id) > 0; }
  // (sweep, rung) pairs with parked trials and no decision: what a timer may decide.
  std::set<std::pair<int64_t, int>> UndecidedRungs() const;

  // The pending reason of a parked trial, as the rung's last readiness check said.
  void SetWaitReason(int64_t sweep_id, int rung, std::string why, int64_t decide_at_ms);
  std::string WaitReason(int64_t trial_id) const;
  // The earliest time a timed rung may be decided (0 = none pending).
  int64_t NextDecisionMs() const;

 private:
  struct Rung {
    int64_t epoch = 0;
    std::optional<RungDecision> decision;
    std::set<int64_t> promoted;  // decision->promoted, for lookups
    int64_t decided_ms = 0;
    std::set<int64_t> resumed;  // pruned here, then resumed to the end
    std::string why;            // the last readiness check's
    int64_t decide_at_ms = 0;   // its timed rule (b), 0 = none
  };
  struct Sweep {
    SearchSpec search;
    std::vector<Rung> rungs;
  };
  struct Report {
    double top1 = 0;
    int64_t ms = 0;
  };
  const Sweep* Find(int64_t sweep_id) const;
  RungDecisionRecord RowOf(int64_t sweep_id, int rung) const;
  // Whether `trial_id` takes part in `rung` (promoted at every earlier rung, not resumed).
  bool InRung(const Sweep& s, int64_t trial_id, int rung) const;

  std::map<int64_t, Sweep> sweeps_;
  std::map<int64_t, std::map<int, Report>> reports_;      // trial -> rung -> report
  std::map<int64_t, std::pair<int64_t, int>> parked_;     // trial -> (sweep, rung)
};

}  // namespace wrpn::server
