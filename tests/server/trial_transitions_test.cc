// The trial state machine's transitions, table-tested.
#include "server/trial_transitions.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

using namespace std::chrono_literals;

TrialRecord Running(int attempts, int retry_base = 0) {
  TrialRecord t;
  t.id = 5;
  t.state = TrialState::kRunning;
  t.attempts = attempts;
  t.retry_base = retry_base;
  t.error = "earlier";
  return t;
}

TEST(TrialTransitions, AfterAttempt) {
  struct Case {
    AttemptOutcome outcome;
    bool retry;
    int attempts, retry_base;
    TrialState want;
  };
  const Case cases[] = {
      {AttemptOutcome::kSucceeded, false, 1, 0, TrialState::kSucceeded},
      {AttemptOutcome::kCancelled, true, 1, 0, TrialState::kCancelled},
      {AttemptOutcome::kFailed, true, 1, 0, TrialState::kQueued},
      {AttemptOutcome::kFailed, true, 3, 0, TrialState::kFailed},  // max_attempts 3 used up
      {AttemptOutcome::kFailed, true, 3, 2, TrialState::kQueued},  // budget reset by a retry
      {AttemptOutcome::kFailed, false, 1, 0, TrialState::kFailed},  // a config failure
      {AttemptOutcome::kExpired, true, 2, 0, TrialState::kQueued},
  };
  for (const Case& c : cases) {
    const TrialRecord r =
        AfterAttempt(Running(c.attempts, c.retry_base), c.outcome, "why", c.retry, 3, 1000);
    EXPECT_EQ(r.state, c.want) << AttemptOutcomeName(c.outcome) << " after " << c.attempts;
    if (c.want == TrialState::kQueued) EXPECT_EQ(r.queued_ms, 1000);
    if (Terminal(c.want)) EXPECT_EQ(r.finished_ms, 1000);
    if (c.outcome == AttemptOutcome::kSucceeded) EXPECT_EQ(r.error, "");
    if (c.outcome == AttemptOutcome::kFailed) EXPECT_EQ(r.error, "why");
  }
}

TEST(TrialTransitions, StartAttemptResumesFromTheCheckpoint) {
  TrialRecord t;
  t.id = 5;
  t.attempts = 1;
  t.checkpoint_path = "/c/2.pt";
  t.checkpoint_epoch = 2;
  StartedAttempt s = StartAttempt(t, 17, {"w-1", "w-2"}, 500);
  EXPECT_EQ(s.trial.state, TrialState::kRunning);
  EXPECT_EQ(s.trial.attempts, 2);
  EXPECT_EQ(s.trial.started_ms, 500);
  EXPECT_EQ(s.attempt.attempt, 2);
  EXPECT_EQ(s.attempt.lease_ids, (std::vector<std::string>{"l-17-0", "l-17-1"}));
  EXPECT_EQ(s.attempt.resume_checkpoint, "/c/2.pt");
  EXPECT_EQ(s.attempt.resume_epoch, 2);
  EXPECT_EQ(AttemptStartedMessage(s.attempt), "attempt 2 leased to w-1,w-2");
  s.trial.started_ms = 100;
  EXPECT_EQ(StartAttempt(s.trial, 18, {"w-1"}, 900).trial.started_ms, 100) << "first start kept";
}

TEST(TrialTransitions, Messages) {
  AttemptRecord a;
  a.attempt = 2;
  a.outcome = AttemptOutcome::kFailed;
  EXPECT_EQ(AttemptEndedMessage(a, "data: disk", true, 10s),
            "attempt 2 failed: data: disk; re-queued, leased again in 10 s (retry backoff)");
  EXPECT_EQ(AttemptEndedMessage(a, "data: disk", true, 0s), "attempt 2 failed: data: disk; re-queued");
  a.outcome = AttemptOutcome::kSucceeded;
  EXPECT_EQ(AttemptEndedMessage(a, "", false, 0s), "attempt 2 succeeded");
}

TEST(TrialTransitions, CancelAndRetry) {
  TrialRecord q;
  q.state = TrialState::kQueued;
  const TrialRecord c = CancelledWhileQueued(q, 70);
  EXPECT_EQ(c.state, TrialState::kCancelled);
  EXPECT_EQ(c.finished_ms, 70);
  TrialRecord f = Running(3);
  f.state = TrialState::kFailed;
  f.finished_ms = 60;
  const TrialRecord r = RequeuedByRetry(f, 80);
  EXPECT_EQ(r.state, TrialState::kQueued);
  EXPECT_EQ(r.retry_base, 3);
  EXPECT_EQ(r.queued_ms, 80);
  EXPECT_EQ(r.finished_ms, 0);
}

TEST(TrialTransitions, FailedWhileQueuedKeepsItsAttemptsAndSaysWhy) {
  TrialRecord q;
  q.state = TrialState::kQueued;
  q.attempts = 0;
  const TrialRecord f = FailedWhileQueued(q, "fp32 initialisation: trial 3 failed", 90);
  EXPECT_EQ(f.state, TrialState::kFailed);
  EXPECT_EQ(f.error, "fp32 initialisation: trial 3 failed");
  EXPECT_EQ(f.finished_ms, 90);
  EXPECT_EQ(f.attempts, 0);
}

}  // namespace
}  // namespace wrpn::server
