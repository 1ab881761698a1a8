// The field table (common/trial_config_fields.inc): every field round-trips, has a flag and
// help, is accepted exactly in its section of a sweep spec, and an unknown key is refused by name.
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/sweep_spec.h"
#include "common/trial_config.h"
#include "tests/common/trial_config_sample.h"

namespace wrpn {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

json ValueOf(const json& config, const FieldInfo& f) {
  const json& obj = f.section == FieldSection::kDataset ? config.at("dataset") : config;
  return obj.contains(f.key) ? obj.at(std::string(f.key)) : json();
}

TEST(TrialConfigFields, TheSampleSetsEveryFieldAwayFromItsDefault) {
  const json sample = TrialConfigToJson(SampleTrialConfig());
  const json defaults = TrialConfigToJson(TrialConfig{});
  ASSERT_TRUE(ValidateTrialConfig(SampleTrialConfig()).ok()) << ValidateTrialConfig(SampleTrialConfig());
  for (const FieldInfo& f : TrialConfigFields()) {
    EXPECT_FALSE(ValueOf(sample, f).is_null()) << f.name << " is not written";
    EXPECT_NE(ValueOf(sample, f), ValueOf(defaults, f))
        << f.name << ": give it a non-default value in SampleTrialConfig()";
  }
}

TEST(TrialConfigFields, EveryFieldRoundTripsParseSerializeParse) {
  const json first = TrialConfigToJson(SampleTrialConfig());
  absl::StatusOr<TrialConfig> parsed = TrialConfigFromJsonText(first.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const json second = TrialConfigToJson(*parsed);
  for (const FieldInfo& f : TrialConfigFields()) {
    EXPECT_EQ(ValueOf(second, f), ValueOf(first, f)) << f.name;
  }
  absl::StatusOr<TrialConfig> again = TrialConfigFromJson(second);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(TrialConfigToJson(*again), first);
}

TEST(TrialConfigFields, EveryFieldHasAUniqueFlagAndHelp) {
  std::set<std::string> flags, names;
  for (const FieldInfo& f : TrialConfigFields()) {
    const std::string flag(f.flag);
    EXPECT_EQ(flag.rfind("--", 0), 0u) << f.name << ": flag '" << flag << "'";
    EXPECT_GT(flag.size(), 2u) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name << " has no help";
    EXPECT_TRUE(flags.insert(flag).second) << flag << " is used twice";
    if (f.type == FieldType::kBool) {
      EXPECT_TRUE(flags.insert("--no-" + flag.substr(2)).second) << "--no-" << flag.substr(2);
    }
    EXPECT_TRUE(names.insert(f.name).second) << f.name << " is declared twice";
  }
  for (const FieldInfo& f : ResourcesFields()) {
    EXPECT_FALSE(f.help.empty()) << f.name << " has no help";
    EXPECT_TRUE(names.insert(f.name).second) << f.name << " is declared twice";
  }
}

TEST(TrialConfigFields, FlagTextBecomesTheFieldsJsonValue) {
  for (const FieldInfo& f : TrialConfigFields()) {
    if (f.type == FieldType::kBool) continue;  // --flag / --no-flag
    const json want = ValueOf(TrialConfigToJson(SampleTrialConfig()), f);
    const std::string text = want.is_string() ? want.get<std::string>() : want.dump();
    absl::StatusOr<json> v = FieldValueFromText(f, text);
    ASSERT_TRUE(v.ok()) << f.name << ": " << v.status();
    EXPECT_EQ(*v, want) << f.name;
  }
  const FieldInfo* wbits = nullptr;
  for (const FieldInfo& f : TrialConfigFields())
    if (f.name == "wbits") wbits = &f;
  ASSERT_NE(wbits, nullptr);
  absl::StatusOr<json> bad = FieldValueFromText(*wbits, "two");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--wbits: expected an integer, got 'two'");
}

TEST(TrialConfigFields, UnknownKeysAreRefusedByName) {
  absl::StatusOr<TrialConfig> c = TrialConfigFromJson({{"epochz", 3}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("epochz: unknown field (known: "));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("epochs"));
  c = TrialConfigFromJson({{"dataset", {{"kindd", "mnist"}}}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("dataset.kindd: unknown field"));
  const std::string axes = "axes: {network: lenet5, width: 1, precision: [[2, 2]]}\n";
  absl::StatusOr<SweepSpec> s = ParseSweepSpec(axes + "recipe: {epocs: 3}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("unknown key 'epocs' in recipe (did you mean 'epochs'?)"));
  s = ParseSweepSpec(axes + "dataset: {kind: mnist, pathh: /d}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("unknown key 'pathh' in dataset"));
  s = ParseSweepSpec(axes + "resources: {gpu_count: 1}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("unknown key 'gpu_count' in resources"));
}

// A spec's recipe takes exactly the Recipe rows, its dataset the dataset rows; axis and run
// fields are refused there. Each accepted value reaches the trials and the spec's JSON form.
TEST(TrialConfigFields, SweepSpecSectionsComeFromTheTable) {
  const json sample = TrialConfigToJson(SampleTrialConfig());
  json doc = {{"axes", {{"network", "resnet20"}, {"width", 1.5}, {"precision", {{2, 4}}}}},
              {"recipe", json::object()},
              {"dataset", sample["dataset"]},
              {"resources", {{"gpus_per_node", 2}, {"nodes", 3}}}};
  for (const FieldInfo& f : TrialConfigFields()) {
    if (f.section == FieldSection::kRecipe) doc["recipe"][std::string(f.key)] = ValueOf(sample, f);
  }
  absl::StatusOr<SweepSpec> spec = SweepSpecFromJson(doc);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const json trial = TrialConfigToJson(MakeTrialConfig(*spec, ExpandSweep(*spec).at(0)));
  const json back = SweepSpecToJson(*spec);
  for (const FieldInfo& f : TrialConfigFields()) {
    if (f.section == FieldSection::kRecipe) {
      EXPECT_EQ(ValueOf(trial, f), ValueOf(sample, f)) << f.name;
      EXPECT_EQ(back["recipe"][std::string(f.key)], ValueOf(sample, f)) << f.name;
    } else if (f.section == FieldSection::kDataset) {
      EXPECT_EQ(ValueOf(trial, f), ValueOf(sample, f)) << f.name;
      EXPECT_EQ(back["dataset"][std::string(f.key)], ValueOf(sample, f)) << f.name;
    } else {
      json bad = doc;
      bad["recipe"][std::string(f.key)] = ValueOf(sample, f);
      absl::StatusOr<SweepSpec> refused = SweepSpecFromJson(bad);
      ASSERT_FALSE(refused.ok()) << f.name << " is accepted in a recipe";
      EXPECT_THAT(std::string(refused.status().message()),
                  HasSubstr("unknown key '" + std::string(f.key) + "' in recipe"));
    }
  }
  EXPECT_EQ(spec->resources.gpus_per_node, 2);
  EXPECT_EQ(spec->resources.nodes, 3);
  EXPECT_EQ(back["resources"], doc["resources"]);
  absl::StatusOr<SweepSpec> again = SweepSpecFromJson(back);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(SweepSpecToJson(*again), back);
}

TEST(TrialConfigFields, ResourcesAcceptProtobufsJsonFormAndNameBadValues) {
  const std::string axes = "axes: {network: lenet5, width: 1, precision: [[2, 2]]}\n";
  absl::StatusOr<SweepSpec> s = ParseSweepSpec(axes + "resources: {gpus_per_node: \"2\", nodes: 1.0}\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->resources.gpus_per_node, 2);
  s = ParseSweepSpec(axes + "resources: {gpus_per_node: 65, nodes: 2}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("resources.gpus_per_node: 65 is out of range [0, 64]"));
  s = ParseSweepSpec(axes + "resources: {nodes: 2}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("resources.nodes: 2 needs gpus_per_node >= 1"));
  s = ParseSweepSpec(axes + "resources: {nodes: x}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("resources.nodes: expected an integer, got \"x\""));
}

}  // namespace
}  // namespace wrpn
