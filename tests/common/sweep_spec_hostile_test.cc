// Regression tests for what fuzzing the sweep-spec parser found (tests/fuzz, docs/reliability.md)
// and for its bounds on hostile specs: every one is a clear INVALID_ARGUMENT, never a crash.
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
