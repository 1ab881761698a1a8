// The field table and the proto agree: a spec's recipe, dataset and resources sections are
// exactly the fields of wrpn.v1.Recipe, Dataset and Resources (the coordinator reads a
// SubmitSweep spec by printing it as JSON and parsing that with the shared parser).
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/sweep_spec.h"
#include "common/trial_config.h"
#include "wrpn/v1/sweep.pb.h"

namespace wrpn {
namespace {

std::set<std::string> ProtoFields(const google::protobuf::Descriptor* d) {
  std::set<std::string> out;
  for (int i = 0; i < d->field_count(); ++i) out.insert(std::string(d->field(i)->name()));
  return out;
}

std::set<std::string> Keys(FieldSection section) {
  std::set<std::string> out;
  for (const std::string& k : TrialConfigKeys(section)) out.insert(k);
  return out;
}

TEST(TrialConfigProto, RecipeDatasetAndResourcesMatchTheFieldTable) {
  EXPECT_EQ(ProtoFields(v1::Recipe::descriptor()), Keys(FieldSection::kRecipe));
  EXPECT_EQ(ProtoFields(v1::Dataset::descriptor()), Keys(FieldSection::kDataset));
  std::set<std::string> resources;
  for (const FieldInfo& f : ResourcesFields()) resources.insert(std::string(f.key));
  EXPECT_EQ(ProtoFields(v1::Resources::descriptor()), resources);
}

}  // namespace
}  // namespace wrpn
