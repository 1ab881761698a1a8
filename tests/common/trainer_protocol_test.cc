// The trainer <-> agent contract: events round-trip through JSON, malformed events name the
// field, failure kinds and exit codes map one to one.
#include "common/trainer_protocol.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

TrainerEvent RoundTrip(const TrainerEvent& e) {
  absl::StatusOr<std::optional<TrainerEvent>> got = ParseEventLine(ToJson(e).dump());
  EXPECT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got.ok() && got->has_value());
  return got.ok() && *got ? **got : TrainerEvent{};
}

TEST(TrainerProtocolTest, EveryEventRoundTrips) {
  StartedEvent started;
  started.config = {{"network", "lenet5"}, {"epochs", 7}};
  started.parameters = 61706;
  started.world_size = 2;
  started.backend = "gloo";
  started.start_epoch = 3;
  const auto s = std::get<StartedEvent>(RoundTrip(started));
  EXPECT_EQ(s.config, started.config);
  EXPECT_EQ(s.epochs(), 7);
  EXPECT_EQ(s.parameters, 61706);
  EXPECT_EQ(s.backend, "gloo");
  EXPECT_EQ(s.start_epoch, 3);

  EpochEvent epoch;
  epoch.epoch = 2;
  epoch.epochs = 5;
  epoch.top1 = 91.5;
  epoch.lr = 0.01;
  const auto e = std::get<EpochEvent>(RoundTrip(epoch));
  EXPECT_EQ(e.epoch, 2);
  EXPECT_EQ(e.top1, 91.5);
  EXPECT_EQ(e.lr, 0.01);
  EXPECT_TRUE(std::isnan(e.train_loss)) << "an unmeasured metric stays absent";
  ASSERT_EQ(e.Metrics().size(), 11u);
  EXPECT_EQ(e.Metrics()[3].first, metric::kTop1);

  const auto c = std::get<CheckpointEvent>(RoundTrip(CheckpointEvent{4, 0, "/ckpt/last.pt"}));
  EXPECT_EQ(c.epoch, 4);
  EXPECT_EQ(c.path, "/ckpt/last.pt");

  FinishedEvent fin;
  fin.top1 = 90;
  fin.best_top1 = 91;
  fin.cost_uniform = 0.25;
  const auto f = std::get<FinishedEvent>(RoundTrip(fin));
  EXPECT_EQ(f.top1, 90);
  EXPECT_EQ(f.best_top1, 91);
  EXPECT_EQ(f.cost_uniform, 0.25);

  const auto i = std::get<InterruptedEvent>(RoundTrip(InterruptedEvent{3, 17, true}));
  EXPECT_EQ(i.step, 17);
  EXPECT_TRUE(i.checkpointed);

  FailedEvent failed{FailureKind::kRendezvous, "rank 1 of world size 2 never arrived", 0};
  const auto x = std::get<FailedEvent>(RoundTrip(failed));
  EXPECT_EQ(x.kind, FailureKind::kRendezvous);
  EXPECT_EQ(x.reason, failed.reason);
  EXPECT_EQ(x.rank, 0);
  EXPECT_EQ(ToJson(failed).dump(),
            R"({"event":"failed","kind":"rendezvous","rank":0,"reason":"rank 1 of world size 2 never arrived"})");
}

TEST(TrainerProtocolTest, LinesThatAreNotEventsAreNotErrors) {
  for (const char* line : {"", "epoch 1/3 top1 40", "[1, 2]", R"({"top1": 3})"}) {
    auto e = ParseEventLine(line);
    ASSERT_TRUE(e.ok()) << line;
    EXPECT_FALSE(e->has_value()) << line;
  }
}

TEST(TrainerProtocolTest, MalformedEventsNameTheField) {
  EXPECT_THAT(ParseEventLine(R"({"event":"epoch","epoch":1,"top1":"high"})").status().message(),
              HasSubstr("epoch.top1: must be a number"));
  EXPECT_THAT(ParseEventLine(R"({"event":"epoch"})").status().message(),
              HasSubstr("epoch.epoch: is required"));
  EXPECT_THAT(ParseEventLine(R"({"event":"failed","kind":"oom"})").status().message(),
              HasSubstr("failed.kind: unknown kind 'oom'"));
  EXPECT_THAT(ParseEventLine(R"({"event":"failed","kind":"launch","reason":"x"})")
                  .status()
                  .message(),
              HasSubstr("failed.kind: 'launch' is the agent's kind"));
  EXPECT_THAT(ParseEventLine(R"({"event":"checkpoint","epoch":1})").status().message(),
              HasSubstr("checkpoint.path: is required"));
  EXPECT_THAT(ParseEventLine(R"({"event":"dance"})").status().message(),
              HasSubstr("unknown event 'dance'"));
}

TEST(TrainerProtocolTest, KindsHaveNamesAndExitCodes) {
  for (FailureKind k : kAllFailureKinds) {
    EXPECT_EQ(FailureKindFromName(FailureKindName(k)), k);
  }
  EXPECT_EQ(FailureKindFromName("oom"), std::nullopt);
  EXPECT_EQ(FailureKindForExit(kExitBadConfig, 0), FailureKind::kConfig);
  EXPECT_EQ(FailureKindForExit(kExitDataError, 0), FailureKind::kData);
  EXPECT_EQ(FailureKindForExit(kExitInterrupted, 0), FailureKind::kInterrupted);
  EXPECT_EQ(FailureKindForExit(kExitRendezvous, 0), FailureKind::kRendezvous);
  EXPECT_EQ(FailureKindForExit(kExitResources, 0), FailureKind::kResources);
  EXPECT_EQ(FailureKindName(FailureKind::kResources), "resources");
  EXPECT_TRUE(FailureIsRetried(FailureKind::kResources));
  EXPECT_TRUE(FailureBacksOff(FailureKind::kResources)) << "a crowded GPU may be free later";
  EXPECT_EQ(FailureKindForExit(kExitInternal, 0), FailureKind::kInternal);
  EXPECT_EQ(FailureKindForExit(0, 9), FailureKind::kInternal);
  EXPECT_FALSE(FailureIsRetried(FailureKind::kConfig));
  EXPECT_TRUE(FailureIsRetried(FailureKind::kRendezvous));
  EXPECT_TRUE(FailureBacksOff(FailureKind::kRendezvous));
  EXPECT_FALSE(FailureBacksOff(FailureKind::kInterrupted));
  EXPECT_EQ(FailureKindName(FailureKind::kLaunch), "launch");
  EXPECT_TRUE(FailureIsRetried(FailureKind::kLaunch));
  EXPECT_FALSE(FailureBacksOff(FailureKind::kLaunch)) << "another worker may start it at once";
  EXPECT_FALSE(FailureCountsAsAttempt(FailureKind::kLaunch));
  EXPECT_TRUE(FailureCountsAsAttempt(FailureKind::kInternal));
  EXPECT_TRUE(FailureCountsAsAttempt(FailureKind::kInterrupted));
}

}  // namespace
}  // namespace wrpn
