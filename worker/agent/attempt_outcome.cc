#include "worker/agent/attempt_outcome.h"

#include "absl/strings/str_cat.h"

namespace wrpn::agent {
namespace {

Outcome Failed(FailureKind kind, std::string reason) {
  return Outcome{Outcome::Kind::kFailed, kind, std::move(reason)};
}

int GlobalRank(const AttemptFacts& f, int local) { return f.node_rank * f.nproc + local; }

// Drained: the trial resumes elsewhere from its checkpoint.
Outcome Drained(const AttemptFacts& f) {
  const std::string where =
      f.interrupted
          ? absl::StrCat("interrupted at epoch ", f.interrupted->epoch, " step ", f.interrupted->step,
                         f.interrupted->checkpointed ? " (checkpoint saved)" : " (no checkpoint)")
          : absl::StrCat("stopped with ", f.exits[0].Describe());
  return Failed(FailureKind::kInterrupted,
                absl::StrCat("worker ", f.worker, " shutting down: ", where));
}

// The first rank that failed (else rank 0) and how, then the trainer's own `failed` line; the
// kind is that line's, else the exit code's.
Outcome RankFailed(const AttemptFacts& f) {
  const int i = f.first_bad >= 0 ? f.first_bad : 0;
  const ExitStatus& e = f.exits[i];
  std::string reason = absl::StrCat("trainer rank ", GlobalRank(f, i), " ",
                                    e.ok() ? "exited 0 without a finished event" : e.Describe());
  FailureKind kind = FailureKindForExit(e.exit_code, e.signal);
  if (f.failed) {
    kind = f.failed->kind;
    absl::StrAppend(&reason, ": ", f.failed->reason);
  } else if (f.interrupted && e.signal == 0 && e.exit_code == kExitInterrupted) {
    absl::StrAppend(&reason, ": interrupted at epoch ", f.interrupted->epoch);
  }
  if (f.stop == StopKind::kPeerFailed && !f.stop_reason.empty() && f.first_bad < 0) {
    absl::StrAppend(&reason, " (", f.stop_reason, ")");
  }
  return Failed(kind, std::move(reason));
}

}  // namespace

Outcome DecideOutcome(const AttemptFacts& f) {
  if (EndedByCoordinator(f.stop)) return Outcome{Outcome::Kind::kDrop, {}, f.stop_reason};
  if (f.exits.empty()) return Failed(FailureKind::kInternal, "no trainer process was started");
  if (f.node_rank == 0 && f.exits[0].ok() && f.finished) {
    return Outcome{Outcome::Kind::kSucceeded, {}, ""};
  }
  if (f.node_rank > 0 && f.first_bad < 0) return Outcome{Outcome::Kind::kAwaitRelease, {}, ""};
  if (f.stop == StopKind::kStalled) {
    const int i = f.first_bad >= 0 ? f.first_bad : 0;
    return Failed(FailureKind::kInternal, absl::StrCat(f.stop_reason, "; trainer rank ",
                                                       GlobalRank(f, i), " ",
                                                       f.exits[i].Describe()));
  }
  if (f.stop == StopKind::kDrain) return Drained(f);
  return RankFailed(f);
}

}  // namespace wrpn::agent
