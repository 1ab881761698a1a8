// The shared network report (describe / cost) and a trial's compute cost from its dataset.
#include "common/network_report.h"

#include <cmath>

#include "common/best_top1.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn {
namespace {

using ::testing::HasSubstr;

TEST(NetworkReport, JsonCarriesLayersCostAndMemory) {
  absl::StatusOr<NetworkReport> r =
      BuildNetworkReport("resnet34", 2, 2, 4, DefaultInput("resnet34"), {64, 128});
  ASSERT_TRUE(r.ok()) << r.status();
  const nlohmann::json j = NetworkReportJson(*r);
  EXPECT_EQ(j["network"], "resnet34");
  EXPECT_EQ(j["layers"].size(), r->spec.layers.size());
  EXPECT_EQ(j["layers"][0]["wbits"], 32) << "the first layer stays FP32";
  EXPECT_EQ(j["fmas"], r->spec.Fmas());
  EXPECT_NEAR(j["cost_uniform"].get<double>(), 0.36, 0.01);
  ASSERT_EQ(j["memory"].size(), 2u);
  EXPECT_EQ(j["memory"][1]["batch"], 128);
  EXPECT_FALSE(NetworkReportJson(*BuildNetworkReport("lenet5", 1, 32, 32, DefaultInput("lenet5")))
                   .contains("memory"));
}

TEST(NetworkReport, BadInputsNameWhatIsWrong) {
  EXPECT_THAT(std::string(ParseInputShape("lenet5", "3x32").status().message()),
              HasSubstr("--input: expected CxHxW"));
  EXPECT_EQ(ParseInputShape("alexnet", "3x227x227")->height, 227);
  EXPECT_THAT(std::string(BuildNetworkReport("lenet5", 1, 0, 32, DefaultInput("lenet5"))
                              .status().message()),
              HasSubstr("wbits"));
  EXPECT_THAT(std::string(BuildNetworkReport("lenet5", 1, 32, 32, DefaultInput("lenet5"), {0})
                              .status().message()),
              HasSubstr("--batch: every batch size must be >= 1"));
}

TEST(TrialCost, UsesTheDatasetsInputShapeNotTheNetworksDefault) {
  TrialConfig c;
  c.network = "resnet20";
  c.width = 2;
  c.wbits = 2;
  c.abits = 2;
  c.dataset.kind = "cifar10";
  c.dataset.path = "/d";
  const InputShape in = TrialInputShape(c);
  EXPECT_EQ(in.channels, 3);
  EXPECT_EQ(in.height, 32);
  const CostReport want = *ComputeCost("resnet20", 2, 2, 2, InputShape{3, 32, 32, 10});
  const CostReport fallback = *ComputeCost("resnet20", 2, 2, 2, DefaultInput("resnet20"));
  ASSERT_NE(want.cost_first_last_fp32, fallback.cost_first_last_fp32)
      << "the test needs an input for which the default is wrong";
  EXPECT_DOUBLE_EQ(TrialCost(c)->cost_first_last_fp32, want.cost_first_last_fp32);
  c.dataset.kind = "synthetic";
  c.dataset.channels = 3, c.dataset.height = 20, c.dataset.width = 24, c.dataset.classes = 7;
  EXPECT_EQ(TrialInputShape(c).width, 24);
  EXPECT_EQ(TrialInputShape(c).classes, 7);
  c.network = "resnet18";
  c.dataset.kind = "imagefolder";
  c.dataset.image_size = 0;
  EXPECT_EQ(TrialInputShape(c).height, 224);
  EXPECT_EQ(TrialInputShape(c).classes, 1000);
}

TEST(BestTop1, IsTheLargestFiniteValue) {
  std::optional<double> best;
  best = BestTop1(best, 40);
  best = BestTop1(best, std::nan(""));
  best = BestTop1(best, 55);
  best = BestTop1(best, 50);
  EXPECT_EQ(best, 55);
}

}  // namespace
}  // namespace wrpn
