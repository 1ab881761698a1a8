#include "common/trial_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace wrpn {
namespace {

using json = nlohmann::json;

std::string ErrorOf(const json& j) {
  auto c = TrialConfigFromJson(j);
  EXPECT_FALSE(c.ok()) << j.dump();
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(TrialConfig, DefaultsRoundTripThroughJson) {
  TrialConfig c;
  c.network = "resnet20";
  c.width = 1.3;
  c.wbits = 2;
  c.abits = 4;
  c.dataset.kind = "synthetic";
  c.dataset.channels = 3;
  auto back = TrialConfigFromJson(TrialConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(TrialConfigToJson(*back), TrialConfigToJson(c));
}

TEST(TrialConfig, BadValuesNameTheField) {
  EXPECT_NE(ErrorOf({{"network", "vgg"}}).find("network: unknown network 'vgg'"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"wbits", 0}}).find("wbits: must be 1..16 or 32, got 0"), std::string::npos);
  EXPECT_NE(ErrorOf({{"abits", 33}}).find("abits: must be 1..16 or 32, got 33"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"width", 0}}).find("width: must be > 0"), std::string::npos);
  EXPECT_NE(ErrorOf({{"width", -1.5}}).find("width"), std::string::npos);
  EXPECT_NE(ErrorOf({{"batch_size", 0}}).find("batch_size: must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"epochs", -1}}).find("epochs"), std::string::npos);
  EXPECT_NE(ErrorOf({{"dataset", {{"kind", "cifar10"}}}}).find("dataset.path: required"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"dataset", {{"kind", "svhn"}}}}).find("dataset.kind: unknown"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"widht", 2}}).find("widht: unknown field"), std::string::npos);
  EXPECT_NE(ErrorOf({{"dataset", {{"pth", "x"}}}}).find("dataset.pth: unknown field"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"wbits", "2"}}).find("wbits: expected an integer"), std::string::npos);
  EXPECT_NE(ErrorOf({{"amp", true}}).find("amp: bf16 autocast needs a CUDA device"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"device", "tpu"}}).find("device:"), std::string::npos);
  EXPECT_NE(ErrorOf({{"resume", true}}).find("resume: needs checkpoint_dir"), std::string::npos);
  EXPECT_NE(ErrorOf(json::array()).find("config: expected an object"), std::string::npos);
}

TEST(TrialConfig, TextThatIsNotJsonIsAnError) {
  auto c = TrialConfigFromJsonText("{\"network\": ");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not valid JSON"), std::string::npos);
}

TEST(TrialConfig, AcceptsEveryKnownBitWidth) {
  for (int k : {1, 2, 3, 4, 8, 16, 32}) {
    EXPECT_TRUE(TrialConfigFromJson({{"wbits", k}, {"abits", k}}).ok()) << k;
  }
}

// Issue 20: the scheme and the FP32 initialisation.
TEST(TrialConfig, SchemeAndInitFromAreCheckedNamingTheField) {
  auto error = [](json j) {
    auto c = TrialConfigFromJson(j);
    return c.ok() ? std::string("OK") : std::string(c.status().message());
  };
  EXPECT_EQ(error({{"scheme", "lsq"}, {"init_from", "fp32"}, {"init_checkpoint", "/ck/last.pt"}}), "OK");
  EXPECT_EQ(TrialConfigFromJson(json::object())->scheme, "wrpn");
  EXPECT_EQ(error({{"scheme", "bnn"}}), "scheme: unknown scheme 'bnn' (known: wrpn, lsq, pact, dorefa)");
  EXPECT_EQ(error({{"scheme", 3}}), "scheme: expected a string, got 3");
  EXPECT_EQ(error({{"init_from", "fp16"}}), "init_from: must be empty or 'fp32', got 'fp16'");
  EXPECT_EQ(error({{"init_checkpoint", "/ck/last.pt"}}), "init_checkpoint: needs init_from: fp32");
  TrialConfig c;
  c.scheme = "pact";
  c.init_from = "fp32";
  auto back = TrialConfigFromJson(TrialConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->scheme, "pact");
  EXPECT_EQ(back->init_from, "fp32");
}

}  // namespace
}  // namespace wrpn
