// wrpn-train train's flags are the field table's (common/trial_config_fields.inc): every row's
// flag is listed by --help and sets its field, as --print-config shows.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/trial_config.h"
#include "tests/common/trial_config_sample.h"

namespace wrpn {
namespace {

using json = nlohmann::json;

struct Proc {
  int rc;
  std::string out;
};

Proc RunTrainer(const std::string& args) {
  const std::string cmd = std::string(WRPN_TRAIN_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

json ValueOf(const json& config, const FieldInfo& f) {
  const json& obj = f.section == FieldSection::kDataset ? config.at("dataset") : config;
  return obj.at(std::string(f.key));
}

TEST(TrainerFlags, HelpListsEveryFieldsFlag) {
  const Proc p = RunTrainer("train --help");
  ASSERT_EQ(p.rc, 0) << p.out;
  for (const FieldInfo& f : TrialConfigFields()) {
    EXPECT_NE(p.out.find(std::string(f.flag)), std::string::npos) << f.name << ": " << f.flag;
    EXPECT_NE(p.out.find(std::string(f.help)), std::string::npos) << f.name << ": help";
  }
}

TEST(TrainerFlags, EveryFlagSetsItsField) {
  const json want = TrialConfigToJson(SampleTrialConfig());
  std::string args = "train --print-config";
  for (const FieldInfo& f : TrialConfigFields()) {
    const json v = ValueOf(want, f);
    const std::string flag(f.flag);
    if (v.is_boolean()) {
      args += v.get<bool>() ? " " + flag : " --no-" + flag.substr(2);
    } else {
      args += " " + flag + " '" + (v.is_string() ? v.get<std::string>() : v.dump()) + "'";
    }
  }
  const Proc p = RunTrainer(args);
  ASSERT_EQ(p.rc, 0) << args << "\n" << p.out;
  EXPECT_EQ(json::parse(p.out), want) << args;
}

TEST(TrainerFlags, FlagsOverrideTheConfigFile) {
  const std::string path = ::testing::TempDir() + "/flags_test_trial.json";
  std::ofstream(path) << R"({"epochs": 7, "lr": 0.2, "dataset": {"kind": "synthetic", "test_size": 9}})";
  const Proc p = RunTrainer("train --print-config --config " + path + " --epochs 3 --no-augment");
  ASSERT_EQ(p.rc, 0) << p.out;
  const json j = json::parse(p.out);
  EXPECT_EQ(j["epochs"], 3);
  EXPECT_EQ(j["lr"], 0.2);
  EXPECT_EQ(j["dataset"]["augment"], false);
  EXPECT_EQ(j["dataset"]["test_size"], 9);
  EXPECT_EQ(j["momentum"], TrialConfig{}.momentum);
}

TEST(TrainerFlags, ABadValueNamesTheFlag) {
  const Proc p = RunTrainer("train --print-config --wbits two");
  EXPECT_EQ(p.rc, 2);
  EXPECT_NE(p.out.find("--wbits: expected an integer, got 'two'"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace wrpn
