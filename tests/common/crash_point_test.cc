// CrashPoint reads WRPN_CRASH_AT once per process, so every case runs in a death-test child
// (re-executed, "threadsafe" style) whose environment the case sets first.
#include "common/crash_point.h"

#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>

namespace wrpn {
namespace {

class CrashPointTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void TearDown() override { unsetenv("WRPN_CRASH_AT"); }
};

TEST_F(CrashPointTest, FiresOnTheNthHitOfItsPointOnly) {
  setenv("WRPN_CRASH_AT", "metrics.uncommitted:3", 1);
  EXPECT_EXIT(
      {
        CrashPoint("metrics", "committed");
        CrashPoint("metric", "s.uncommitted");  // same characters, another point
        CrashPoint("lease_grant", "uncommitted");
        CrashPoint("metrics", "uncommitted");
        CrashPoint("metrics", "uncommitted");
        std::fprintf(stderr, "survived two hits\n");
        CrashPoint("metrics", "uncommitted");
        std::fprintf(stderr, "survived the third\n");
        std::exit(0);
      },
      testing::KilledBySignal(SIGKILL),
      "survived two hits\ncrash point 'metrics.uncommitted' reached \\(hit 3\\): SIGKILL");
}

TEST_F(CrashPointTest, DefaultsToTheFirstHit) {
  setenv("WRPN_CRASH_AT", "complete.committed", 1);
  EXPECT_EXIT(
      {
        const CrashPointSetting s = ActiveCrashPoint();
        if (s.point != "complete.committed" || s.hit != 1) std::exit(3);
        CrashPoint("complete", "committed");
        std::exit(0);
      },
      testing::KilledBySignal(SIGKILL), "crash point 'complete.committed' reached \\(hit 1\\)");
}

TEST_F(CrashPointTest, UnsetMeansNeverFires) {
  EXPECT_EXIT(
      {
        if (!ActiveCrashPoint().point.empty()) std::exit(3);
        for (int i = 0; i < 1000; ++i) CrashPoint("metrics", "uncommitted");
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(CrashPointTest, AMalformedSettingEndsTheProcessNamingTheProblem) {
  for (const char* bad : {"metrics.uncommitted:0", "metrics.uncommitted:x", "metrics:2",
                          "metrics.uncommitted:"}) {
    setenv("WRPN_CRASH_AT", bad, 1);
    EXPECT_EXIT({ (void)ActiveCrashPoint(); std::exit(0); }, testing::ExitedWithCode(2),
                std::string("WRPN_CRASH_AT='") + bad + "'")
        << bad;
  }
}

}  // namespace
}  // namespace wrpn
