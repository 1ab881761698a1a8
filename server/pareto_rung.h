#pragma once
// One rung of a Pareto-pruned sweep (issue 21, docs/pareto.md): when the rung is decided, and
// which trials go on (promoted) and which end (pruned). Pure functions over plain values; no
// I/O, no lock, time only through the Clock passed in. Thread-safe.
//
// The cells of a rung are the grid's cells (network, width, wbits, abits, scheme); each cell's
// score is the mean top-1 at the rung epoch over its seeds that reported there, its cost the
// trial's cost_uniform (known from submission).
//
// Front and margin. A cell is on the front when no cell of lower or equal cost has a strictly
// higher score (so ties, in score or in cost, stay on the front: pruning loses work, a tie costs
// only epochs). A cell is promoted when its score is at least `best - margin`, where `best` is
// the highest score among the cells of lower or equal cost (itself included); margin 0 promotes
// exactly the front. Margin "auto" is twice the largest seed spread (max - min top-1 of one
// cell's reported seeds) at this rung, and at least 0.5 points. All seeds of a promoted cell go
// on together, including those that have not reported yet; failed and cancelled trials are
// never promoted nor pruned (they keep their state).
//
// When a rung is decided (RungReady). Live trials are those neither failed nor cancelled.
//   (a) every live trial has reported at the rung; or
//   (b) at least ceil(quorum x live) trials have reported (search.quorum, 0.75 by default) and
//       no report has arrived for `timeout` (search.rung_timeout, 30 min by default), counted
//       from the latest report's time (a stored wall time, so a restarted coordinator keeps
//       the wait).
// A failed or cancelled trial therefore never blocks a rung. A rung with no live trial is not
// decided (there is nothing to decide). Trials that report after the decision (late) do not move
// the front: a late trial of a cell with a verdict follows it; a cell without one is judged on
// its first report against the decided front with the decided margin (ExtendRung).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/search_spec.h"
#include "nlohmann/json.hpp"

namespace wrpn::server {

enum class RungTrialState {
  kPending,    // live, not yet at the rung (queued or running)
  kReported,   // stopped at the rung with a checkpoint; `top1` is its top-1 there
  kFailed,
  kCancelled,
};

struct RungTrial {
  int64_t trial_id = 0;
  std::string cell;         // the grid cell's key; the trials of one cell are its seeds
  double cost_uniform = 0;  // the cell's compute cost
  RungTrialState state = RungTrialState::kPending;
  double top1 = 0;          // kReported: top-1 (%) after `epoch` epochs
  int64_t epoch = 0;        // kReported: the epoch of that top-1 (the rung)
  int64_t reported_ms = 0;  // kReported: wall time of the report
};

struct RungMargin {
  bool automatic = true;  // twice the largest seed spread, at least kMinAutoMargin
  double points = 0;      // when !automatic, >= 0
};
inline constexpr double kMinAutoMargin = 0.5;

struct RungPolicy {
  double quorum = kDefaultRungQuorum;  // fraction of live trials, (0, 1]
  std::chrono::milliseconds timeout = std::chrono::seconds(kDefaultRungTimeoutSeconds);
};
// A pareto spec's margin and policy (search.margin, search.quorum, search.rung_timeout).
RungMargin MarginOf(const SearchSpec& s);
RungPolicy PolicyOf(const SearchSpec& s);

struct RungReadiness {
  bool ready = false;
  int live = 0, reported = 0, quorum = 0;  // quorum: reports rule (b) needs
  int64_t decide_at_ms = 0;  // rule (b) pending: when it will hold (0 = not before a report)
  std::string why;           // "all 26 live trials reported", "14 of 26 reported; ..."
};
RungReadiness RungReady(const std::vector<RungTrial>& trials, const RungPolicy& policy,
                        const Clock& clock);

struct CellVerdict {
  std::string cell;
  double cost_uniform = 0;
  double top1 = 0;    // mean over its reported seeds
  double spread = 0;  // max - min of those seeds (0 for one seed)
  int seeds = 0;      // reported seeds
  bool on_front = false;
  bool promoted = false;
  double gap = 0;     // best score at lower or equal cost minus this cell's (0 on the front)
  bool late = false;  // judged after the decision
};

struct PrunedTrial {
  int64_t trial_id = 0;
  double top1 = 0;  // its own top-1 at the rung
  int64_t epoch = 0;
  bool operator==(const PrunedTrial&) const = default;
};

struct RungDecision {
  double margin = 0;               // points, after "auto" is resolved
  std::vector<CellVerdict> cells;  // every judged cell, in the order of its first trial
  std::vector<int64_t> promoted;   // trial ids, input order: reported and pending seeds
  std::vector<PrunedTrial> pruned; // reported trials of cells not promoted, input order
  std::vector<int64_t> waiting;    // pending trials of cells without a verdict (late)
};

// The decision over the trials as they are now (call once RungReady says so). Pending trials of
// a promoted cell are promoted; pending trials of a pruned cell are pruned when they report
// (ExtendRung), since only a report gives them a top-1 to end with.
RungDecision DecideRung(const std::vector<RungTrial>& trials, const RungMargin& margin);

// `decided` after trials reported since: cells keep their verdict; a new cell is judged against
// the decided front (the cells of `decided` not judged late) with `decided.margin`. Returns the
// whole decision (earlier verdicts included), so applying it twice changes nothing.
RungDecision ExtendRung(const RungDecision& decided, const std::vector<RungTrial>& trials);

// The decision as stored (a sweep history event's payload) and read back; FromJson names the
// field that is wrong.
nlohmann::json RungDecisionToJson(const RungDecision& d);
absl::StatusOr<RungDecision> RungDecisionFromJson(const nlohmann::json& j);

}  // namespace wrpn::server
