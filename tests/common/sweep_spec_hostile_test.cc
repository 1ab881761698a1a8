// Regression tests for what fuzzing the sweep-spec parser found (tests/fuzz, docs/reliability.md)
// and for its bounds on hostile specs: every one is a clear INVALID_ARGUMENT, never a crash.
#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/sweep_spec.h"

namespace wrpn {
namespace {

using ::testing::HasSubstr;

constexpr const char* kAxes = "axes: {network: lenet5, width: 1, precision: [\"1/1\"]}\n";

std::string Error(const std::string& text) {
  auto spec = ParseSweepSpec(text);
  EXPECT_FALSE(spec.ok()) << text.substr(0, 200);
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(SweepSpecHostileTest, InvalidUtf8IsRefusedNotThrown) {
  // Found by fuzz_sweep_spec: nlohmann::json::dump() threw on it while building an error message.
  EXPECT_THAT(Error(std::string("name: \"a\xff\xfe\"\n") + kAxes), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Error(std::string("{\"name\": \"x\", \"axes\": {\"network\": \"lenet5\", \"width\": 1.5"
                                "\xe2\x82, \"precision\": [\"1/1\"]}}")),
              HasSubstr("not valid UTF-8"));
}

TEST(SweepSpecHostileTest, YamlEscapesThatYamlCppWritesAsLatin1AreRefused) {
  // Found by fuzz_sweep_spec: yaml-cpp turns "\_" (U+00A0) into the single byte 0xA0.
  EXPECT_THAT(Error(std::string("name: \"a\\_b\"\n") + kAxes), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Error(std::string("{\"a\\_\": 1}\n")), HasSubstr("not valid UTF-8"));
}

TEST(SweepSpecHostileTest, ValidUnicodeStillParses) {
  auto spec = ParseSweepSpec(std::string("name: \"grille ü ✓ 🙂\"\n") + kAxes);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "grille ü ✓ 🙂");
}

TEST(SweepSpecHostileTest, LongScalarsDoNotRecurse) {
  // Numbers were matched with std::regex, which recurses per character.
  const std::string digits(200000, '7');
  EXPECT_THAT(Error("name: x\naxes: {network: lenet5, width: [" + digits +
                    "], precision: [\"1/1\"]}\n"),
              HasSubstr("width"));
  EXPECT_THAT(Error("name: x\naxes: {network: lenet5, width: [1." + digits +
                    "e5], precision: [\"1/1\"]}\n"),
              HasSubstr("width"));
}

TEST(SweepSpecHostileTest, NestingAndAliasesAreBounded) {
  EXPECT_THAT(Error("name: x\naxes: " + std::string(100, '[') + std::string(100, ']')),
              HasSubstr("nested deeper than 64"));
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    bomb += "]\n";
  }
  EXPECT_THAT(Error(bomb), HasSubstr("more than 1000000 values"));
}

TEST(SweepSpecHostileTest, LongAxesValidateInLinearTime) {
  // Found by tests/server/security_test.cc: duplicate checks scanned the values before each one,
  // so 100,001 seeds took over 20 s of CPU per SubmitSweep; and 100,000 problems were each
  // compared with all earlier ones and all returned.
  std::string seeds, nets;
  for (int i = 0; i < 100001; ++i) seeds += (i ? "," : "") + std::to_string(i);
  for (int i = 0; i < 50000; ++i) nets += (i ? ",n" : "n") + std::to_string(i);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(Error(std::string("axes: {network: lenet5, width: 1, precision: [\"1/1\"], seed: [") +
                    seeds + "]}\n"),
              HasSubstr("more than the limit of 100000"));
  const std::string many = Error("axes: {network: [" + nets + "], width: 1, precision: [\"1/1\"]}\n");
  EXPECT_THAT(many, HasSubstr("unknown network 'n0'"));
  EXPECT_THAT(many, HasSubstr(" more problems"));
  EXPECT_LT(many.size(), 8192u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST(SweepSpecHostileTest, NameAndDatasetPathAreBounded) {
  EXPECT_THAT(Error("name: " + std::string(300, 'n') + "\n" + kAxes),
              HasSubstr("name: is 300 bytes; at most 256"));
  for (const char* path : {"../../etc", "/data/../../etc", "imagenet/../.."}) {
    EXPECT_THAT(Error(std::string(kAxes) + "dataset: {kind: cifar10, path: \"" + path + "\"}\n"),
                HasSubstr("dataset.path: '" + std::string(path) + "' must not contain '..'"));
  }
  auto ok = ParseSweepSpec(std::string(kAxes) + "dataset: {kind: cifar10, path: /data/c..10}\n");
  EXPECT_TRUE(ok.ok()) << ok.status();  // '..' inside a name is fine
}

}  // namespace
}  // namespace wrpn
