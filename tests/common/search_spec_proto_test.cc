// wrpn.v1.Search has exactly the keys of a spec's `search` section (the coordinator reads a
// SubmitSweep spec message by printing it as JSON and parsing that with the shared parser).
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/search_spec.h"
#include "wrpn/v1/sweep.pb.h"

namespace wrpn {
namespace {

TEST(SearchSpecProto, SearchMatchesTheSectionsKeys) {
  std::set<std::string> proto;
  const google::protobuf::Descriptor* d = v1::Search::descriptor();
  for (int i = 0; i < d->field_count(); ++i) proto.insert(std::string(d->field(i)->name()));
  EXPECT_EQ(proto, std::set<std::string>(SearchKeys().begin(), SearchKeys().end()));
  EXPECT_NE(v1::SweepSpec::descriptor()->FindFieldByName("search"), nullptr);
}

}  // namespace
}  // namespace wrpn
