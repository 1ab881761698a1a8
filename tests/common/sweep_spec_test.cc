#include "common/sweep_spec.h"

#include "absl/strings/str_split.h"

#include <fstream>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wrpn {
namespace {

using ::testing::HasSubstr;

constexpr const char* kMinimal = R"(
name: t
axes:
  network: lenet5
  width: [1, 2]
  precision: [[32, 32], [4, 4]]
  seed: [1, 2]
recipe: {epochs: 3, lr: 0.05}
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ErrorOf(const std::string& text) {
  auto spec = ParseSweepSpec(text);
  if (spec.ok()) return "OK";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(SweepSpecTest, ParsesAndExpandsInOrder) {
  auto spec = ParseSweepSpec(kMinimal);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "t");
  EXPECT_EQ(CountTrials(*spec), 8);
  auto trials = ExpandSweep(*spec);
  ASSERT_EQ(trials.size(), 8u);
  EXPECT_EQ(trials[0].network, "lenet5");
  EXPECT_EQ(trials[0].width, 1);
  EXPECT_EQ(trials[0].wbits, 32);
  EXPECT_EQ(trials[0].seed, 1);
  EXPECT_EQ(trials[1].seed, 2);
  EXPECT_EQ(trials[2].wbits, 4);
  EXPECT_EQ(trials[7].width, 2);
  EXPECT_EQ(spec->base.epochs, 3);
  EXPECT_EQ(spec->base.device, "cpu");
  EXPECT_EQ(spec->max_attempts, 3);
}

TEST(SweepSpecTest, WbitsTimesAbitsIsAProduct) {
  auto spec = ParseSweepSpec(R"({"axes": {"network": ["alexnet"], "width": [1],
                                 "wbits": [32, 8, 4, 2, 1], "abits": [32, 8, 4, 2, 1]}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(CountTrials(*spec), 25);
  EXPECT_EQ(spec->axes[0].seeds, std::vector<int64_t>{0});
}

TEST(SweepSpecTest, PrecisionForms) {
  auto spec = ParseSweepSpec(R"(
axes:
  network: lenet5
  width: 1
  precision: ["4/2", {wbits: 8, abits: 4}, [1, 1]]
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->axes[0].precisions.size(), 3u);
  EXPECT_EQ(spec->axes[0].precisions[0].wbits, 4);
  EXPECT_EQ(spec->axes[0].precisions[0].abits, 2);
  EXPECT_EQ(spec->axes[0].precisions[1].wbits, 8);
  EXPECT_EQ(spec->axes[0].precisions[2].abits, 1);
}

TEST(SweepSpecTest, TrialConfigCarriesRecipeAndPoint) {
  auto spec = ParseSweepSpec(R"(
axes: {network: lenet5, width: 2, precision: [[2, 4]], seed: 7}
dataset: {kind: fashion_mnist, train_subset: 1000, augment: false}
recipe: {epochs: 4, optimizer: adam, lr: 0.001, schedule: step, step_epochs: 2}
resources: {gpus_per_node: 1}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto cfg = TrialConfigJson(*spec, ExpandSweep(*spec)[0]);
  EXPECT_EQ(cfg["network"], "lenet5");
  EXPECT_EQ(cfg["width"], 2.0);
  EXPECT_EQ(cfg["wbits"], 2);
  EXPECT_EQ(cfg["abits"], 4);
  EXPECT_EQ(cfg["seed"], 7);
  EXPECT_EQ(cfg["epochs"], 4);
  EXPECT_EQ(cfg["optimizer"], "adam");
  EXPECT_EQ(cfg["device"], "cuda");
  EXPECT_EQ(cfg["dataset"]["train_subset"], 1000);
  EXPECT_EQ(cfg["dataset"]["augment"], false);
  // What the trainer reads must parse back.
  auto back = TrialConfigFromJson(cfg);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->schedule, "step");
}

TEST(SweepSpecTest, JsonRoundTrip) {
  auto spec = ParseSweepSpec(kMinimal);
  ASSERT_TRUE(spec.ok());
  auto again = SweepSpecFromJson(SweepSpecToJson(*spec));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(SweepSpecToJson(*again), SweepSpecToJson(*spec));
  // JSON text is accepted as well.
  auto from_text = ParseSweepSpec(SweepSpecToJson(*spec).dump());
  ASSERT_TRUE(from_text.ok()) << from_text.status();
  EXPECT_EQ(CountTrials(*from_text), 8);
}

TEST(SweepSpecTest, ValidationErrorsNameFieldAndValue) {
  const std::string axes_tail = "  width: [1]\n  precision: [[4, 4]]\n";
  EXPECT_THAT(ErrorOf("axes:\n  network: [resnet99]\n" + axes_tail),
              HasSubstr("axes.network: unknown network 'resnet99'"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1]\n  precision: [[17, 4]]\n"),
              HasSubstr("axes.precision: wbits 17 is not a valid bit width (1..16 or 32)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1]\n  precision: [[4, 0]]\n"),
              HasSubstr("axes.precision: abits 0 is not a valid bit width"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1]\n  wbits: [33]\n  abits: [4]\n"),
              HasSubstr("axes.wbits: 33 is not a valid bit width (1..16 or 32)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [0]\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: 0 is out of range (0, 8]"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [8.5]\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: 8.5 is out of range (0, 8]"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [-1]\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: -1 is out of range"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1, 2, 1]\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: duplicate value 1"));
  EXPECT_THAT(ErrorOf("axes:\n  network: [lenet5, lenet5]\n" + axes_tail),
              HasSubstr("axes.network: duplicate value 'lenet5'"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1]\n  precision: [[4, 4], \"4/4\"]\n"),
              HasSubstr("axes.precision: duplicate value 4/4"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "  seed: [1, 1]\n"),
              HasSubstr("axes.seed: duplicate value 1"));
  EXPECT_THAT(ErrorOf("axes:\n  network: []\n" + axes_tail),
              HasSubstr("axes.network: must not be empty"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: []\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: must not be empty"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "  seed: []\n"),
              HasSubstr("axes.seed: must not be empty"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  widht: [1]\n  precision: [[4, 4]]\n"),
              HasSubstr("unknown key 'widht' in axes (did you mean 'width'?)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "recipe: {epocs: 3}\n"),
              HasSubstr("unknown key 'epocs' in recipe (did you mean 'epochs'?)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "priorty: 3\n"),
              HasSubstr("unknown key 'priorty' in the spec (did you mean 'priority'?)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "recipe: {epochs: -2}\n"),
              HasSubstr("recipe.epochs"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "recipe: {epochs: -2}\n"),
              HasSubstr("-2"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "dataset: {kind: svhn}\n"),
              HasSubstr("dataset.kind"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "resources: {nodes: 0}\n"),
              HasSubstr("resources.nodes: 0 is out of range [1, 1024]"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n" + axes_tail + "max_attempts: 0\n"),
              HasSubstr("max_attempts: 0 is out of range [1, 100]"));
  EXPECT_THAT(ErrorOf("name: x\n"), HasSubstr("axes: missing"));
  EXPECT_THAT(ErrorOf("axes: [a, b"), HasSubstr("not valid YAML or JSON"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: [1]\n"),
              HasSubstr("axes: missing precision (or wbits and abits)"));
  EXPECT_THAT(ErrorOf("axes:\n  network: lenet5\n  width: x\n  precision: [[4, 4]]\n"),
              HasSubstr("axes.width: expected a number, got \"x\""));
}

// A user fixing a spec sees every problem at once, one per line, not just the first of a section.
TEST(SweepSpecTest, EveryProblemIsListedOnePerLine) {
  const std::string text = R"(
name: many-problems
prioirty: 2
axes:
  network: [lenet5, vgg16]
  width: [0, 1, 1, 9]
  precision: ["4/4", "17/4", "4/4"]
  seed: [-1]
  widht: 2
recipe: {epochs: -3, lr: -0.1, optimizer: adagrad, epocs: 1}
resources: {gpus: 1, nodes: 0}
max_attempts: 0
)";
  const std::string err = ErrorOf(text);
  const std::vector<std::string> want = {
      "unknown key 'prioirty' in the spec (did you mean 'priority'?)",
      "unknown key 'widht' in axes (did you mean 'width'?)",
      "axes.network: unknown network 'vgg16'",
      "axes.width: 0 is out of range (0, 8]",
      "axes.width: duplicate value 1",
      "axes.width: 9 is out of range (0, 8]",
      "axes.precision: wbits 17 is not a valid bit width",
      "axes.precision: duplicate value 4/4",
      "axes.seed: -1 must be >= 0",
      "unknown key 'epocs' in recipe (did you mean 'epochs'?)",
      "recipe.epochs",
      "recipe.lr",
      "recipe.optimizer",
      "unknown key 'gpus' in resources",
  };
  for (const std::string& w : want) EXPECT_THAT(err, HasSubstr(w)) << w;
  // One problem per line, none repeated.
  std::vector<std::string> lines = absl::StrSplit(err, '\n');
  EXPECT_GE(lines.size(), want.size());
  std::set<std::string> unique(lines.begin(), lines.end());
  EXPECT_EQ(unique.size(), lines.size()) << err;
  // ValidateSweepSpec on a spec built in code lists every value problem too.
  auto spec = ParseSweepSpec(kMinimal);
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->axes[0].widths = {0, 9};
  spec->resources.nodes = 0;
  spec->max_attempts = 0;
  const absl::Status st = ValidateSweepSpec(*spec);
  EXPECT_THAT(std::string(st.message()), HasSubstr("axes.width: 0 is out of range"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("axes.width: 9 is out of range"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("resources.nodes: 0 is out of range"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("max_attempts: 0 is out of range"));
}

TEST(SweepSpecTest, GridOverTheLimitIsRefused) {
  // 6 networks x 80 widths x 15x15 bit pairs x 1 seed = 108,000 trials.
  std::string widths;
  for (int i = 1; i <= 80; ++i) widths += (i > 1 ? ", " : "") + std::to_string(i * 0.1);
  std::string bits = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]";
  std::string text = "axes:\n  network: [lenet5, resnet20, resnet18, resnet34, alexnet, "
                     "inception_bn]\n  width: [" + widths + "]\n  wbits: " + bits +
                     "\n  abits: " + bits + "\n";
  EXPECT_THAT(ErrorOf(text),
              HasSubstr("axes: the grid has 108000 trials, more than the limit of 100000"));
}

TEST(SweepSpecTest, BlocksAreAUnionWithoutRepeats) {
  auto spec = ParseSweepSpec(R"(
axes:
  - {network: resnet34, width: 1, precision: [[32, 32], [1, 1]]}
  - {network: resnet34, width: 2, precision: [[8, 4], [4, 4]]}
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(CountTrials(*spec), 4);
  EXPECT_THAT(ErrorOf(R"(
axes:
  - {network: resnet34, width: 1, precision: [[32, 32]]}
  - {network: resnet34, width: [1, 2], precision: [[32, 32]]}
)"),
              HasSubstr("is listed by more than one block"));
  EXPECT_THAT(ErrorOf("axes:\n  - {network: lenet5, width: 1, precision: [[4, 4]]}\n"
                      "  - {network: lenet5, width: 0, precision: [[4, 4]]}\n"),
              HasSubstr("axes[1].width: 0 is out of range"));
}

TEST(SweepSpecTest, ExamplesParse) {
  struct Example {
    const char* file;
    int64_t trials;
  };
  for (const Example& e : {Example{"table1_2_alexnet.yaml", 50}, Example{"table4_resnet34.yaml", 9},
                           Example{"table5_inception_bn.yaml", 5},
                           Example{"fashion-quick.yaml", 8},
                           Example{"schemes-lenet5.yaml", 38},
                           Example{"schemes-lenet5-lsq-init.yaml", 12}}) {
    const std::string path = std::string(WRPN_SOURCE_DIR) + "/examples/sweeps/" + e.file;
    const std::string text = ReadFile(path);
    ASSERT_FALSE(text.empty()) << path;
    auto spec = ParseSweepSpec(text);
    ASSERT_TRUE(spec.ok()) << path << ": " << spec.status();
    EXPECT_EQ(CountTrials(*spec), e.trials) << path;
  }
}

// Issue 20: the quantization scheme is an axis (default [wrpn]) and init_from a recipe key.
TEST(SweepSpecTest, SchemeAxisExpandsAndDefaultsToWrpn) {
  auto plain = ParseSweepSpec("axes: {network: lenet5, width: 1, precision: [\"4/4\"]}");
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(ExpandSweep(*plain).size(), 1u);
  EXPECT_EQ(ExpandSweep(*plain)[0].scheme, "wrpn");
  EXPECT_EQ(MakeTrialConfig(*plain, ExpandSweep(*plain)[0]).scheme, "wrpn");

  auto spec = ParseSweepSpec(
      "axes: {network: lenet5, width: [1, 2], precision: [\"4/4\", \"2/2\"], scheme: [lsq, pact, dorefa],"
      " seed: [0, 1]}\nrecipe: {init_from: fp32}");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(CountTrials(*spec), 2 * 2 * 3 * 2);
  const auto points = ExpandSweep(*spec);
  ASSERT_EQ(points.size(), 24u);
  EXPECT_EQ(points[0].scheme, "lsq");  // network, width, precision, scheme, seed
  EXPECT_EQ(points[1].scheme, "lsq");
  EXPECT_EQ(points[2].scheme, "pact");
  const TrialConfig c = MakeTrialConfig(*spec, points[2]);
  EXPECT_EQ(c.scheme, "pact");
  EXPECT_EQ(c.init_from, "fp32");
  // The canonical form keeps both and parses back to the same trials.
  auto again = SweepSpecFromJson(SweepSpecToJson(*spec));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(ExpandSweep(*again).size(), 24u);
  for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(ExpandSweep(*again)[i].scheme, points[i].scheme);
  EXPECT_EQ(again->base.init_from, "fp32");
  // A scalar is a one-element list; the same cell under two schemes is two trials.
  auto scalar = ParseSweepSpec("axes:\n  - {network: lenet5, width: 1, precision: [\"4/4\"], scheme: lsq}\n"
                               "  - {network: lenet5, width: 1, precision: [\"4/4\"]}\n");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_EQ(CountTrials(*scalar), 2);
}

TEST(SweepSpecTest, BadSchemesAndInitFromAreNamed) {
  const std::string axes = "axes: {network: lenet5, width: 1, precision: [\"4/4\"], ";
  EXPECT_THAT(ErrorOf(axes + "scheme: [lsqq]}"),
              HasSubstr("axes.scheme: unknown scheme 'lsqq' (known: wrpn, lsq, pact, dorefa)"));
  EXPECT_THAT(ErrorOf(axes + "scheme: [lsq, lsq]}"), HasSubstr("axes.scheme: duplicate value 'lsq'"));
  EXPECT_THAT(ErrorOf(axes + "scheme: []}"), HasSubstr("axes.scheme: must not be empty"));
  EXPECT_THAT(ErrorOf(axes + "scheme: [3]}"), HasSubstr("axes.scheme: expected a string, got 3"));
  EXPECT_THAT(ErrorOf(axes + "scheme: [pact]}\nrecipe: {weight_scale: 1}"),
              HasSubstr("recipe.weight_scale: is a rule of the wrpn scheme's weight quantizer"));
  EXPECT_THAT(ErrorOf(axes + "scheme: [lsq]}\nrecipe: {init_from: fp16}"),
              HasSubstr("recipe.init_from: must be empty or 'fp32', got 'fp16'"));
  EXPECT_THAT(ErrorOf("axes:\n  - {network: lenet5, width: 1, precision: [\"4/4\"], scheme: lsq}\n"
                      "  - {network: lenet5, width: 1, precision: [\"4/4\"], scheme: [wrpn, lsq]}\n"),
              HasSubstr("scheme=lsq is listed by more than one block"));
}

}  // namespace
}  // namespace wrpn
