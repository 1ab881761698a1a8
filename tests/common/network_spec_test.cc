#include "common/network_spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

namespace wrpn {
namespace {

NetworkSpec Describe(const std::string& net, double width) {
  auto s = DescribeNetwork(net, width, DefaultInput(net));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

// Reference parameter counts of the 1x FP32 architectures. Ours put batch norm where the
// reference has biases, so they may differ by a fraction of a percent.
TEST(NetworkSpec, ParameterCountsMatchReferenceArchitectures) {
  struct Ref {
    const char* net;
    double params;
  };
  const Ref refs[] = {
      {"lenet5", 61706},        // LeCun et al. 1998, 32x32 input geometry
      {"resnet20", 272474},     // He et al. 2016, CIFAR ResNet-20 with projection shortcuts
      {"resnet18", 11689512},   // torchvision resnet18
      {"resnet34", 21797672},   // torchvision resnet34
      // torchvision resnet50 (25,557,032) has batch norm after each conv (out channels); ours,
      // pre-activation, before each conv (in channels) and once more before the pool.
      {"resnet50", 25557032},
      {"alexnet", 61100840},    // torchvision alexnet
      // torchvision googlenet (6,624,904 without aux heads) plus the second 3x3 conv and its
      // batch norm in every 5x5 branch: sum(ch5x5^2 * 9 + 4 * ch5x5) over the nine modules.
      {"inception_bn", 6624904 + 665856 + 2624},
  };
  for (const auto& r : refs) {
    const auto spec = Describe(r.net, 1.0);
    EXPECT_NEAR(spec.ParamCount() / r.params, 1.0, 0.01) << r.net << ": " << spec.ParamCount();
  }
}

TEST(NetworkSpec, WidthScalesFilterMapsButNotInputsOrClasses) {
  for (const auto& net : KnownNetworks()) {
    const auto one = Describe(net, 1.0);
    const auto two = Describe(net, 2.0);
    ASSERT_EQ(one.layers.size(), two.layers.size()) << net;
    EXPECT_EQ(two.layers.front().in_channels, one.layers.front().in_channels) << net;
    EXPECT_EQ(two.layers.front().out_channels, 2 * one.layers.front().out_channels) << net;
    EXPECT_EQ(two.layers.back().out_channels, one.layers.back().out_channels) << net;
    EXPECT_FALSE(two.layers.front().quantized);
    EXPECT_FALSE(two.layers.back().quantized);
    for (size_t i = 1; i + 1 < two.layers.size(); ++i) EXPECT_TRUE(two.layers[i].quantized);
  }
  EXPECT_EQ(ScaledChannels(16, 1.3), 21);  // 20.8 rounds to 21
  EXPECT_EQ(ScaledChannels(6, 1.1), 7);    // 6.6 rounds to 7
  EXPECT_EQ(ScaledChannels(1, 0.1), 1);
}

TEST(NetworkSpec, RejectsBadRequestsNamingTheField) {
  auto s = DescribeNetwork("vgg16", 1.0, InputShape{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("network: unknown network 'vgg16'"), std::string::npos);
  s = DescribeNetwork("lenet5", 0.0, InputShape{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("width"), std::string::npos);
  s = DescribeNetwork("alexnet", 1.0, InputShape{1, 28, 28, 10});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("too small"), std::string::npos);
  auto c = ComputeCost("lenet5", 1.0, 0, 32, InputShape{});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("wbits"), std::string::npos);
  c = ComputeCost("lenet5", 1.0, 32, 33, InputShape{});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("abits"), std::string::npos);
}

TEST(CostModel, AlexNetFmaRatioAt2xIsNearThePapers39) {
  auto c = ComputeCost("alexnet", 2.0, 32, 32, DefaultInput("alexnet"));
  ASSERT_TRUE(c.ok());
  EXPECT_GE(c->fma_ratio, 3.75);
  EXPECT_LE(c->fma_ratio, 3.95);
  EXPECT_DOUBLE_EQ(c->cost_uniform, c->fma_ratio);  // 64 bits / 64 bits
}

TEST(CostModel, UniformCostIsFmaRatioTimesBitsOver64) {
  for (const auto& net : KnownNetworks()) {
    for (double w : {1.0, 1.3, 2.0, 3.0}) {
      for (int wb : {1, 2, 4, 8, 32}) {
        for (int ab : {1, 2, 4, 32}) {
          auto c = ComputeCost(net, w, wb, ab, DefaultInput(net));
          ASSERT_TRUE(c.ok());
          EXPECT_DOUBLE_EQ(c->cost_uniform, c->fma_ratio * (wb + ab) / 64.0);
          EXPECT_GE(c->cost_first_last_fp32, c->cost_uniform - 1e-12);
        }
      }
    }
  }
}

TEST(CostModel, Table3GridWithinPaperRounding) {
  std::ifstream in(std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json");
  ASSERT_TRUE(in.good());
  const auto tables = nlohmann::json::parse(in);
  const auto axis = tables["bits_axis"].get<std::vector<int>>();
  const nlohmann::json* table3 = nullptr;
  for (const auto& t : tables["tables"])
    if (t["id"] == "table3") table3 = &t;
  ASSERT_NE(table3, nullptr);
  int cells = 0;
  for (const auto& [wbits, row] : (*table3)["cost"].items()) {
    for (size_t i = 0; i < axis.size(); ++i) {
      auto c = ComputeCost("alexnet", 2.0, std::stoi(wbits), axis[i], DefaultInput("alexnet"));
      ASSERT_TRUE(c.ok());
      EXPECT_NEAR(c->cost_uniform, row[i].get<double>(), 0.15)
          << "w" << wbits << " a" << axis[i];
      ++cells;
    }
  }
  EXPECT_EQ(cells, 25);
}

TEST(CostModel, FirstLastFp32CountsThoseLayersAt64Bits) {
  const auto spec = Describe("lenet5", 1.0);
  double expected = 0;
  for (const auto& l : spec.layers) expected += l.Fmas() * (l.quantized ? 2 + 4 : 64);
  auto c = ComputeCost("lenet5", 1.0, 2, 4, DefaultInput("lenet5"));
  ASSERT_TRUE(c.ok());
  EXPECT_NEAR(c->cost_first_last_fp32, expected / (spec.Fmas() * 64.0), 1e-12);
  // LeNet-5 by hand: conv1 28*28*6*25, conv2 10*10*16*150, fc1 400*120, fc2 120*84, fc3 84*10.
  EXPECT_EQ(spec.Fmas(), 117600 + 240000 + 48000 + 10080 + 840);
}

}  // namespace
}  // namespace wrpn
