// RetryDelay and HeldTrials: the retry backoff after failed attempts.
#include "server/retry_backoff.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

using namespace std::chrono_literals;

AttemptRecord Ended(AttemptOutcome o, std::optional<FailureKind> kind = std::nullopt) {
  AttemptRecord a;
  a.outcome = o;
  a.failure_kind = kind;
  return a;
}

TEST(RetryDelay, DoublesPerFailureInARowUpToTheMax) {
  const RetryBackoff b{10s, 35s};
  std::vector<AttemptRecord> a;
  EXPECT_EQ(RetryDelay(a, b), 0ms);
  a.push_back(Ended(AttemptOutcome::kFailed, FailureKind::kData));
  EXPECT_EQ(RetryDelay(a, b), 10s);
  a.push_back(Ended(AttemptOutcome::kFailed, FailureKind::kRendezvous));
  EXPECT_EQ(RetryDelay(a, b), 20s);
  a.push_back(Ended(AttemptOutcome::kFailed));  // stored before kinds: counts as a failure
  EXPECT_EQ(RetryDelay(a, b), 35s) << "capped";
  EXPECT_EQ(RetryDelay(a, RetryBackoff{0ms, 35s}), 0ms) << "no backoff configured";
}

TEST(RetryDelay, AnExpiredOrInterruptedAttemptEndsTheRun) {
  const RetryBackoff b{10s, 300s};
  std::vector<AttemptRecord> a = {Ended(AttemptOutcome::kFailed, FailureKind::kData),
                                  Ended(AttemptOutcome::kExpired)};
  EXPECT_EQ(RetryDelay(a, b), 0ms) << "the trial was not at fault";
  a.push_back(Ended(AttemptOutcome::kFailed, FailureKind::kInternal));
  EXPECT_EQ(RetryDelay(a, b), 10s) << "only failures since the expiry count";
  a.push_back(Ended(AttemptOutcome::kFailed, FailureKind::kInterrupted));
  EXPECT_EQ(RetryDelay(a, b), 0ms);
}

TEST(HeldTrials, ReleasesDueTrialsEarliestFirst) {
  const SteadyTime t0{};
  HeldTrials h;
  h.Hold(1, t0 + 30s);
  h.Hold(2, t0 + 10s);
  h.Hold(3, t0 + 20s);
  h.Hold(1, t0 + 5s);  // replaces the earlier hold
  EXPECT_EQ(h.Until(1), t0 + 5s);
  h.Release(3);
  h.Release(42);  // not held: no-op
  EXPECT_FALSE(h.Until(3));
  EXPECT_TRUE(h.TakeDue(t0 + 1s).empty());
  EXPECT_EQ(h.TakeDue(t0 + 10s), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(h.Until(1));
  EXPECT_TRUE(h.TakeDue(t0 + 100s).empty());
}

}  // namespace
}  // namespace wrpn::server
