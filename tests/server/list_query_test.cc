// What a List* request selects: page size, page start and the trial filters.
#include "server/list_query.h"

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

namespace pb = ::wrpn::v1;

TEST(ListQuery, PageSizeDefaultsAndCaps) {
  EXPECT_EQ(PageSize(0), kDefaultPageSize);
  EXPECT_EQ(PageSize(7), 7);
  EXPECT_EQ(PageSize(kMaxPageSize + 1), kMaxPageSize);
}

TEST(ListQuery, PageStartParsesTheToken) {
  EXPECT_EQ(*PageStart(""), 0);
  EXPECT_EQ(*PageStart("42"), 42);
  EXPECT_EQ(PageStart("abc").status().message(), "page_token: 'abc' is not valid");
  EXPECT_FALSE(PageStart("-1").ok());
}

TEST(ListQuery, TrialFilters) {
  TrialRecord t;
  t.network = "lenet5";
  t.width = 2;
  t.wbits = 4;
  t.abits = 2;
  t.state = TrialState::kRunning;
  pb::ListTrialsRequest req;
  EXPECT_TRUE(TrialMatches(req, t));
  req.set_state(pb::TRIAL_RUNNING);
  req.set_network("lenet5");
  req.set_width(2);
  req.set_wbits(4);
  req.set_abits(2);
  EXPECT_TRUE(TrialMatches(req, t));
  req.set_abits(4);
  EXPECT_FALSE(TrialMatches(req, t));
  req.clear_abits();
  req.set_state(pb::TRIAL_QUEUED);
  EXPECT_FALSE(TrialMatches(req, t));
  req.set_state(pb::TRIAL_RUNNING);
  req.set_network("resnet20");
  EXPECT_FALSE(TrialMatches(req, t));
}

}  // namespace
}  // namespace wrpn::server
