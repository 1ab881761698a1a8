// Metric ingestion: at-least-once delivery deduplicated, best top-1, latest value per name.
#include "server/metric_ingest.h"

#include <cmath>

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

pb::ReportMetricsRequest Points(std::vector<std::tuple<std::string, int64_t, double, int64_t>> ps) {
  pb::ReportMetricsRequest req;
  for (const auto& [name, step, value, wall] : ps) {
    pb::MetricPoint* p = req.add_points();
    p->set_name(name);
    p->set_step(step);
    p->set_value(value);
    p->set_wall_ms(wall);
  }
  return req;
}

TEST(MetricIngest, APointSentAgainIsStoredOnce) {
  NewestPoints newest;
  const auto req = Points({{"loss", 1, 2.0, 100}, {"top1", 1, 50, 100}});
  FreshPoints first = SelectFresh(req, newest, 3, 1, std::nullopt, 999);
  ASSERT_EQ(first.records.size(), 2u);
  EXPECT_EQ(first.records[0].trial_id, 3);
  EXPECT_EQ(first.records[0].wall_ms, 100);
  EXPECT_EQ(first.best_top1, 50);
  NoteRequest(newest, req);
  EXPECT_TRUE(SelectFresh(req, newest, 3, 1, first.best_top1, 999).records.empty());
  const auto later = Points({{"loss", 2, 1.5, 200}, {"top1", 1, 50, 100}});
  FreshPoints second = SelectFresh(later, newest, 3, 1, first.best_top1, 999);
  ASSERT_EQ(second.records.size(), 1u);
  EXPECT_EQ(second.records[0].step, 2);
}

TEST(MetricIngest, PointsWithoutWallTimeAreKeptAndStamped) {
  NewestPoints newest;
  NoteStored(newest, "loss", 500, 9);
  FreshPoints f = SelectFresh(Points({{"loss", 1, 1.0, 0}}), newest, 1, 1, std::nullopt, 777);
  ASSERT_EQ(f.records.size(), 1u);
  EXPECT_EQ(f.records[0].wall_ms, 777);
}

TEST(MetricIngest, BestTop1IgnoresLowerAndNonFiniteValues) {
  FreshPoints f = SelectFresh(Points({{"top1", 1, 60, 1}, {"top1", 2, NAN, 2}, {"top1", 3, 55, 3}}),
                              {}, 1, 1, 58.0, 0);
  EXPECT_EQ(f.best_top1, 60);
  EXPECT_EQ(SelectFresh(Points({{"top1", 1, 40, 1}}), {}, 1, 1, 58.0, 0).best_top1, 58.0);
}

TEST(MetricIngest, NewestOfAttemptAndKeepLatest) {
  std::vector<MetricRecord> stored = {{1, 1, "loss", 5, 1, 100}, {1, 2, "loss", 1, 1, 300},
                                      {1, 1, "loss", 4, 1, 200}};
  NewestPoints n = NewestOfAttempt(stored, 1);
  EXPECT_EQ(n.at("loss"), std::make_pair(int64_t{200}, int64_t{4}));
  std::map<std::string, MetricRecord> last;
  for (const MetricRecord& p : stored) KeepLatest(last, p);
  EXPECT_EQ(last.at("loss").step, 5);
}

}  // namespace
}  // namespace wrpn::server
