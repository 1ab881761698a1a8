// Fractional GPUs in the sweep spec (issue #19): gpus_per_node as a whole number or 1/k of one
// GPU, gpu_share (the canonical form), gpu_memory_gb, and the errors that name the field.
#include "common/gpu_share.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/sweep_spec.h"

namespace wrpn {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::string Spec(const std::string& resources) {
  return "axes: {network: lenet5, width: 1, precision: [\"4/4\"], seed: [0, 1]}\nresources: " +
         resources + "\n";
}
std::string ErrorOf(const std::string& resources) {
  auto s = ParseSweepSpec(Spec(resources));
  return s.ok() ? "" : std::string(s.status().message());
}

TEST(GpuShareTest, FractionsOneOverKUpToSixteen) {
  struct Row { json value; int whole; int k; };
  const std::vector<Row> table = {
      {0, 0, 0}, {1, 1, 0}, {8, 8, 0}, {0.5, 0, 2}, {0.25, 0, 4}, {0.333, 0, 3},
      {1.0 / 3, 0, 3}, {0.125, 0, 8}, {0.0625, 0, 16}, {"1/4", 0, 4}, {"1/1", 1, 0}};
  for (const Row& r : table) {
    auto a = ParseGpuAmount(r.value, "resources.gpus_per_node");
    ASSERT_TRUE(a.ok()) << r.value.dump() << ": " << a.status();
    EXPECT_EQ(a->whole, r.whole) << r.value.dump();
    EXPECT_EQ(a->denominator, r.k) << r.value.dump();
  }
  EXPECT_EQ((GpuAmount{0, 4}.share_units() * 4), kGpuShareUnits);
  for (int k = 2; k <= 16; ++k) EXPECT_EQ(kGpuShareUnits % k, 0) << k;
  EXPECT_EQ(ShareUnitsOf(0.25), kGpuShareUnits / 4);
  EXPECT_EQ(ShareUnitsOf(0.3), 0);
  EXPECT_EQ(FormatShare(0.25), "0.25");
}

TEST(GpuShareTest, NotAFractionIsRefusedNamingTheAllowedOnes) {
  for (json v : {json(0.3), json(0.04), json(1.5), json(0.7), json("1/17"), json("half")}) {
    auto a = ParseGpuAmount(v, "resources.gpus_per_node");
    ASSERT_FALSE(a.ok()) << v.dump();
    EXPECT_THAT(a.status().message(), HasSubstr("resources.gpus_per_node: "));
    EXPECT_THAT(a.status().message(), HasSubstr("0.5, 0.333, 0.25"));
    EXPECT_THAT(a.status().message(), HasSubstr("1/16"));
  }
  EXPECT_THAT(ErrorOf("{gpus_per_node: 0.3}"),
              HasSubstr("resources.gpus_per_node: 0.3 is neither a whole number of GPUs nor a "
                        "fraction 1/k of one (allowed: a whole number of GPUs, or 0.5, 0.333, "
                        "0.25, 0.2, 0.167"));
  EXPECT_THAT(ErrorOf("{gpus_per_node: [1]}"),
              HasSubstr("resources.gpus_per_node: expected a number of GPUs"));
}

TEST(GpuShareTest, SpecTakesFractionsAndMemory) {
  auto s = ParseSweepSpec(Spec("{gpus_per_node: 0.25, gpu_memory_gb: 2.5}"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->resources.gpus_per_node, 0);
  EXPECT_DOUBLE_EQ(s->resources.gpu_share, 0.25);
  EXPECT_DOUBLE_EQ(s->resources.gpu_memory_gb, 2.5);
  EXPECT_TRUE(s->resources.uses_gpu());
  EXPECT_EQ(s->base.device, "cuda") << "a fractional trial is a GPU trial";
  // The canonical form spells the fraction gpu_share and parses back to the same spec.
  const json doc = SweepSpecToJson(*s);
  EXPECT_DOUBLE_EQ(doc["resources"]["gpu_share"].get<double>(), 0.25);
  EXPECT_EQ(doc["resources"]["gpus_per_node"], 0) << "every row of the field table is written";
  auto back = SweepSpecFromJson(doc);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_DOUBLE_EQ(back->resources.gpu_share, 0.25);
  EXPECT_DOUBLE_EQ(back->resources.gpu_memory_gb, 2.5);
  auto whole = ParseSweepSpec(Spec("{gpus_per_node: 2}"));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(SweepSpecToJson(*whole)["resources"]["gpus_per_node"], 2);
  EXPECT_EQ(SweepSpecToJson(*whole)["resources"]["gpu_memory_gb"], 0.0);
}

TEST(GpuShareTest, RulesNameTheField) {
  EXPECT_THAT(ErrorOf("{gpus_per_node: 0.5, nodes: 2}"),
              HasSubstr("resources.nodes: 2 with gpu_share 0.5: a gang (nodes > 1) takes "
                        "whole GPUs only"));
  EXPECT_THAT(ErrorOf("{gpus_per_node: 0, gpu_memory_gb: 4}"),
              HasSubstr("resources.gpu_memory_gb: 4 needs a GPU trial"));
  EXPECT_THAT(ErrorOf("{gpus_per_node: 1, gpu_memory_gb: -1}"),
              HasSubstr("resources.gpu_memory_gb: -1 is out of range [0, 4096]"));
  EXPECT_THAT(ErrorOf("{gpus_per_node: 1, gpu_share: 0.5}"),
              HasSubstr("resources.gpu_share: give either gpus_per_node or gpu_share, not both"));
  EXPECT_THAT(ErrorOf("{gpu_share: 2}"), HasSubstr("resources.gpu_share: 2 must be a fraction"));
  EXPECT_THAT(ErrorOf("{gpus_per_node: 0.25, gpu_memroy_gb: 1}"),
              HasSubstr("unknown key 'gpu_memroy_gb' in resources (did you mean 'gpu_memory_gb'?)"));
  EXPECT_EQ(ErrorOf("{gpus_per_node: 0.25, gpu_memory_gb: 4096}"), "");
  EXPECT_EQ(ErrorOf("{gpus_per_node: 0.5, gpu_share: 0.5}"), "") << "the same fraction twice";
}

TEST(GpuShareTest, TheResNet20ReproductionExampleParses) {
  std::ifstream in(std::string(WRPN_SOURCE_DIR) + "/examples/sweeps/reproduction-resnet20.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ParseSweepSpec(ss.str());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(CountTrials(*s), 26);
  EXPECT_DOUBLE_EQ(s->resources.gpu_share, 0.25);
  EXPECT_DOUBLE_EQ(s->resources.gpu_memory_gb, 8);
}

}  // namespace
}  // namespace wrpn
