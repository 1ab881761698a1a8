// The grid builder: seeds aggregated per (network, width, wbits, abits, scheme) cell, the cell's
// state, our change from the sweep's 1x 32/32 cell, and the paper join (by family, overridden,
// none, no tables) on the real data/wrpn_tables.json.
#include "server/grid_builder.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace wrpn::server {
namespace {

class GridBuilderTest : public testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json");
    std::stringstream ss;
    ss << in.rdbuf();
    auto t = ParsePaperTables(ss.str());
    ASSERT_TRUE(t.ok()) << t.status();
    paper_ = PaperIndex(*t);
  }
  void Add(const std::string& net, double width, int wbits, int abits, int64_t seed,
           std::optional<double> top1, TrialState state = TrialState::kSucceeded) {
    TrialRecord t;
    t.id = static_cast<int64_t>(recs_.size()) + 1;
    t.network = net;
    t.width = width;
    t.wbits = wbits;
    t.abits = abits;
    t.seed = seed;
    t.state = state;
    t.final_top1 = top1;
    if (top1) t.best_top1 = *top1 + 1, t.final_top5 = *top1 + 9;
    t.cost_uniform = wbits * abits / 1024.0;
    recs_.push_back(t);
  }
  pb::GetGridResponse Build(const std::string& ref = "auto") {
    std::vector<const TrialRecord*> ptrs;
    for (const TrialRecord& t : recs_) ptrs.push_back(&t);
    return BuildGrid(7, ptrs, paper_, *ParsePaperRef(ref));
  }
  PaperIndex paper_;
  std::vector<TrialRecord> recs_;
};

TEST_F(GridBuilderTest, AggregatesSeedsIntoCellsInSweepOrder) {
  Add("lenet5", 1, 32, 32, 0, 90.0);
  Add("lenet5", 1, 4, 4, 0, 88.0);
  Add("lenet5", 1, 32, 32, 1, 92.0);
  Add("lenet5", 1, 4, 4, 1, std::nullopt, TrialState::kRunning);
  const pb::GetGridResponse g = Build();
  EXPECT_EQ(g.sweep_id(), 7);
  ASSERT_EQ(g.cells_size(), 2);
  const pb::GridCell& base = g.cells(0);
  EXPECT_EQ(base.wbits(), 32);
  EXPECT_EQ(base.scheme(), "wrpn");
  ASSERT_EQ(base.seeds_size(), 2);
  EXPECT_EQ(base.trial_id(), 1);
  EXPECT_DOUBLE_EQ(base.final_top1(), 91.0);
  EXPECT_NEAR(base.final_top1_std(), 1.41421356, 1e-6);
  EXPECT_DOUBLE_EQ(base.best_top1(), 92.0);
  EXPECT_DOUBLE_EQ(base.final_top5(), 100.0);
  EXPECT_EQ(base.state(), pb::TRIAL_SUCCEEDED);
  EXPECT_DOUBLE_EQ(base.our_delta(), 0.0);
  const pb::GridCell& low = g.cells(1);
  EXPECT_EQ(low.state(), pb::TRIAL_RUNNING);  // one seed still running
  EXPECT_DOUBLE_EQ(low.final_top1(), 88.0);   // the finished seed only
  EXPECT_FALSE(low.has_final_top1_std());     // one seed: no spread, not 0
  EXPECT_DOUBLE_EQ(low.our_delta(), -3.0);
  EXPECT_DOUBLE_EQ(low.cost_uniform(), 16 / 1024.0);
  EXPECT_EQ(g.bits_axis_size(), 5);
}

TEST_F(GridBuilderTest, CellStateIsTheLeastAdvancedSeeds) {
  Add("lenet5", 1, 32, 32, 0, 90.0);
  Add("lenet5", 1, 32, 32, 1, std::nullopt, TrialState::kQueued);
  Add("lenet5", 1, 4, 4, 0, std::nullopt, TrialState::kFailed);
  Add("lenet5", 1, 4, 4, 1, std::nullopt, TrialState::kCancelled);
  Add("lenet5", 1, 2, 2, 0, std::nullopt, TrialState::kCancelled);
  Add("lenet5", 1, 2, 2, 1, std::nullopt, TrialState::kQueued);
  Add("lenet5", 1, 2, 2, 2, std::nullopt, TrialState::kRunning);
  const pb::GetGridResponse g = Build();
  ASSERT_EQ(g.cells_size(), 3);
  EXPECT_EQ(g.cells(0).state(), pb::TRIAL_QUEUED);
  EXPECT_EQ(g.cells(1).state(), pb::TRIAL_FAILED);
  EXPECT_EQ(g.cells(2).state(), pb::TRIAL_RUNNING);
  EXPECT_FALSE(g.cells(1).has_our_delta());  // nothing finished
}

TEST_F(GridBuilderTest, LenetIsComparedWithAlexNetAndResnetWithResNet34) {
  Add("lenet5", 1, 32, 32, 0, 90.0);
  Add("lenet5", 2, 4, 4, 0, 89.0);
  Add("resnet20", 1, 32, 32, 0, 80.0);
  Add("resnet20", 2, 4, 4, 0, 81.5);
  Add("resnet20", 2, 8, 8, 0, 81.0);  // the paper has no ResNet-34 2x w8/a8
  const pb::GetGridResponse g = Build();
  EXPECT_FALSE(g.paper_version().empty());
  const pb::GridCell& l = g.cells(1);
  EXPECT_EQ(l.paper_network(), "alexnet");
  EXPECT_EQ(l.paper_table(), "table2");
  EXPECT_DOUBLE_EQ(l.paper_top1(), 58.6);
  EXPECT_DOUBLE_EQ(l.paper_delta(), 58.6 - 57.2);
  EXPECT_DOUBLE_EQ(l.our_delta(), -1.0);
  EXPECT_DOUBLE_EQ(g.cells(0).paper_delta(), 0.0);
  const pb::GridCell& r = g.cells(3);
  EXPECT_EQ(r.paper_network(), "resnet34");
  EXPECT_EQ(r.paper_table(), "table4");
  EXPECT_DOUBLE_EQ(r.paper_top1(), 74.52);
  EXPECT_DOUBLE_EQ(r.paper_delta(), 74.52 - 73.59);
  EXPECT_DOUBLE_EQ(r.paper_cost(), 0.5);
  EXPECT_DOUBLE_EQ(r.our_delta(), 1.5);  // against resnet20's own baseline, not lenet5's
  const pb::GridCell& missing = g.cells(4);
  EXPECT_EQ(missing.paper_network(), "resnet34");
  EXPECT_FALSE(missing.has_paper_top1());
  EXPECT_FALSE(missing.has_paper_delta());
  ASSERT_EQ(g.baselines_size(), 2);  // the reference networks', sorted
  EXPECT_EQ(g.baselines(0).network(), "alexnet");
  EXPECT_DOUBLE_EQ(g.baselines(0).top1(), 57.2);
  EXPECT_EQ(g.baselines(1).network(), "resnet34");
  EXPECT_DOUBLE_EQ(g.baselines(1).top1(), 73.59);
}

TEST_F(GridBuilderTest, TheRequestPicksTheReference) {
  Add("lenet5", 1, 32, 32, 0, 90.0);
  Add("lenet5", 2, 4, 4, 0, 89.0);
  pb::GetGridResponse g = Build("table4");
  EXPECT_EQ(g.cells(1).paper_network(), "resnet34");
  EXPECT_DOUBLE_EQ(g.cells(1).paper_delta(), 74.52 - 73.59);
  g = Build("none");
  EXPECT_EQ(g.cells(1).paper_network(), "");
  EXPECT_FALSE(g.cells(1).has_paper_top1());
  EXPECT_EQ(g.baselines_size(), 0);
  EXPECT_DOUBLE_EQ(g.cells(1).our_delta(), -1.0);  // ours does not depend on the paper
}

TEST_F(GridBuilderTest, WithoutTablesThereIsNoComparison) {
  paper_ = PaperIndex();
  Add("lenet5", 1, 32, 32, 0, 90.0);
  const pb::GetGridResponse g = Build();
  EXPECT_TRUE(g.paper_version().empty());
  EXPECT_EQ(g.cells(0).paper_network(), "");
  EXPECT_FALSE(g.cells(0).has_paper_top1());
  EXPECT_DOUBLE_EQ(g.cells(0).our_delta(), 0.0);
}

// Issue 20: the trial's scheme keys its cell; a scheme without its own 1x 32/32 cell is compared
// with the network's (wrpn's) baseline, at the same cost.
TEST_F(GridBuilderTest, EachSchemeHasItsOwnCells) {
  Add("lenet5", 1, 32, 32, 0, 90.0);
  Add("lenet5", 1, 4, 4, 0, 88.0);
  Add("lenet5", 1, 4, 4, 0, 89.5);
  recs_.back().scheme = "lsq";
  Add("lenet5", 1, 4, 4, 1, 89.7);
  recs_.back().scheme = "lsq";
  const pb::GetGridResponse g = Build();
  ASSERT_EQ(g.cells_size(), 3);
  EXPECT_EQ(g.cells(1).scheme(), "wrpn");
  EXPECT_EQ(g.cells(1).seeds_size(), 1);
  EXPECT_EQ(g.cells(2).scheme(), "lsq");
  EXPECT_EQ(g.cells(2).seeds_size(), 2);
  EXPECT_NEAR(g.cells(2).final_top1(), 89.6, 1e-9);
  EXPECT_NEAR(g.cells(2).our_delta(), -0.4, 1e-9);
  EXPECT_EQ(g.cells(2).cost_uniform(), g.cells(1).cost_uniform());
}

}  // namespace
}  // namespace wrpn::server
