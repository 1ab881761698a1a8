#include "worker/agent/gpus.h"

#include <gtest/gtest.h>

namespace wrpn::agent {
namespace {

TEST(ParseNvidiaSmiTest, ReadsIndexNameAndMemory) {
  auto gpus = ParseNvidiaSmi("0, NVIDIA H100 80GB HBM3, 81559\n1, Tesla V100-SXM2-16GB, 16384\n");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index(), 0);
  EXPECT_EQ(gpus[0].name(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpus[0].memory_bytes(), 81559LL * 1024 * 1024);
  EXPECT_EQ(gpus[1].index(), 1);
  EXPECT_EQ(gpus[1].name(), "Tesla V100-SXM2-16GB");
}

TEST(ParseNvidiaSmiTest, SkipsNoiseAndKeepsCommasInNames) {
  auto gpus = ParseNvidiaSmi("No devices were found\n\n3, Weird, Name, [N/A]\n");
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].index(), 3);
  EXPECT_EQ(gpus[0].name(), "Weird, Name");
  EXPECT_EQ(gpus[0].memory_bytes(), 0);
}

}  // namespace
}  // namespace wrpn::agent
