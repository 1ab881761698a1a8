// The outcome decision (worker/agent/attempt_outcome.h) as a table: what the agent saw of an
// attempt's ranks -> what it reports.
#include "worker/agent/attempt_outcome.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn::agent {
namespace {

using Kind = Outcome::Kind;

ExitStatus Code(int code) { return ExitStatus{code, 0}; }
ExitStatus Signal(int sig) { return ExitStatus{-1, sig}; }

struct Row {
  const char* name;
  AttemptFacts facts;
  Kind kind;
  FailureKind failure;  // for kFailed
  const char* reason;   // exact reason (kFailed, kDrop); "" = not checked
};

FinishedEvent Finished() { return FinishedEvent{91.5, 99.1}; }

std::vector<Row> Table() {
  const auto facts = [](std::vector<ExitStatus> exits) {
    AttemptFacts f;
    f.worker = "box";
    f.nproc = static_cast<int>(exits.size());
    f.exits = std::move(exits);
    for (size_t i = 0; i < f.exits.size(); ++i)
      if (!f.exits[i].ok() && f.first_bad < 0) f.first_bad = static_cast<int>(i);
    return f;
  };
  std::vector<Row> rows;
  {
    AttemptFacts f = facts({Code(0)});
    f.finished = Finished();
    rows.push_back({"finished", f, Kind::kSucceeded, {}, ""});
  }
  {
    AttemptFacts f = facts({Code(0), Code(0)});
    f.node_rank = 1;
    rows.push_back({"gang node > 0 ended cleanly", f, Kind::kAwaitRelease, {}, ""});
  }
  {
    AttemptFacts f = facts({Code(0), Signal(9)});
    f.node_rank = 1;
    rows.push_back({"gang node > 0 with a failed rank", f, Kind::kFailed, FailureKind::kInternal,
                    "trainer rank 3 killed by signal 9 (SIGKILL)"});
  }
  for (StopKind k : {StopKind::kCancel, StopKind::kForget, StopKind::kLeaseLost}) {
    AttemptFacts f = facts({Signal(15)});
    f.stop = k;
    f.stop_reason = "cancelled by the coordinator";
    f.finished = Finished();
    rows.push_back({"ended by the coordinator", f, Kind::kDrop, {}, "cancelled by the coordinator"});
  }
  {
    AttemptFacts f = facts({Code(kExitInterrupted)});
    f.stop = StopKind::kDrain;
    f.interrupted = InterruptedEvent{4, 120, true};
    rows.push_back({"drained after a checkpoint", f, Kind::kFailed, FailureKind::kInterrupted,
                    "worker box shutting down: interrupted at epoch 4 step 120 (checkpoint saved)"});
  }
  {
    AttemptFacts f = facts({Signal(9)});
    f.stop = StopKind::kDrain;
    rows.push_back({"drained, killed", f, Kind::kFailed, FailureKind::kInterrupted,
                    "worker box shutting down: stopped with killed by signal 9 (SIGKILL)"});
  }
  {
    AttemptFacts f = facts({Signal(9)});
    f.stop = StopKind::kStalled;
    f.stop_reason = "no output from the trainer for 5 s (stall timeout): taken as hung";
    rows.push_back({"stalled", f, Kind::kFailed, FailureKind::kInternal,
                    "no output from the trainer for 5 s (stall timeout): taken as hung; trainer "
                    "rank 0 killed by signal 9 (SIGKILL)"});
  }
  {
    AttemptFacts f = facts({Code(kExitRendezvous)});
    f.failed = FailedEvent{FailureKind::kRendezvous, "rank 1 of world size 2 never arrived"};
    rows.push_back({"the trainer's failed line gives kind and reason", f, Kind::kFailed,
                    FailureKind::kRendezvous,
                    "trainer rank 0 exit code 5: rank 1 of world size 2 never arrived"});
  }
  {
    AttemptFacts f = facts({Code(kExitDataError)});
    rows.push_back({"no failed line: the kind from the exit code", f, Kind::kFailed,
                    FailureKind::kData, "trainer rank 0 exit code 3"});
  }
  {
    AttemptFacts f = facts({Code(0)});
    rows.push_back({"exit 0 without a finished event", f, Kind::kFailed, FailureKind::kInternal,
                    "trainer rank 0 exited 0 without a finished event"});
  }
  {
    AttemptFacts f = facts({Code(kExitInterrupted)});
    f.interrupted = InterruptedEvent{2, 0, true};
    rows.push_back({"interrupted by itself", f, Kind::kFailed, FailureKind::kInterrupted,
                    "trainer rank 0 exit code 4: interrupted at epoch 2"});
  }
  {
    AttemptFacts f = facts({Code(0), Code(kExitBadConfig)});
    f.finished = Finished();
    rows.push_back({"rank 0 finished: its result counts", f, Kind::kSucceeded, {}, ""});
  }
  {
    AttemptFacts f = facts({Signal(15), Code(kExitBadConfig)});
    f.first_bad = 1;  // rank 1 failed first, then rank 0 was stopped
    f.stop = StopKind::kPeerFailed;
    f.stop_reason = "rank 1 ended with exit code 2";
    rows.push_back({"a peer failed: that rank is named", f, Kind::kFailed, FailureKind::kConfig,
                    "trainer rank 1 exit code 2"});
  }
  {
    AttemptFacts f = facts({Signal(15), Signal(15)});
    f.first_bad = -1;  // every rank was stopped, none failed first on its own
    f.exits = {Code(0), Code(0)};
    f.stop = StopKind::kPeerFailed;
    f.stop_reason = "cannot start rank 2: no such file";
    f.failed = FailedEvent{FailureKind::kInternal, "cannot start rank 2: no such file"};
    rows.push_back({"a rank that could not start", f, Kind::kFailed, FailureKind::kInternal,
                    "trainer rank 0 exited 0 without a finished event: cannot start rank 2: no "
                    "such file (cannot start rank 2: no such file)"});
  }
  return rows;
}

TEST(AttemptOutcome, Table) {
  for (const Row& row : Table()) {
    SCOPED_TRACE(row.name);
    const Outcome o = DecideOutcome(row.facts);
    EXPECT_EQ(o.kind, row.kind);
    if (row.kind == Kind::kFailed) EXPECT_EQ(o.failure, row.failure);
    if (*row.reason) EXPECT_EQ(o.reason, row.reason);
  }
}

}  // namespace
}  // namespace wrpn::agent
