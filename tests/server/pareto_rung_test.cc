#include "server/pareto_rung.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"

namespace wrpn::server {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

constexpr int64_t kEpoch = 2;

RungTrial Reported(int64_t id, const std::string& cell, double cost, double top1,
                   int64_t reported_ms = 0) {
  return {id, cell, cost, RungTrialState::kReported, top1, kEpoch, reported_ms};
}
RungTrial Pending(int64_t id, const std::string& cell, double cost) {
  return {id, cell, cost, RungTrialState::kPending};
}
RungTrial Failed(int64_t id, const std::string& cell, double cost) {
  return {id, cell, cost, RungTrialState::kFailed};
}
RungTrial Cancelled(int64_t id, const std::string& cell, double cost) {
  return {id, cell, cost, RungTrialState::kCancelled};
}
RungMargin Points(double p) { return {false, p}; }
RungMargin Auto() { return {true, 0}; }

std::vector<int64_t> PrunedIds(const RungDecision& d) {
  std::vector<int64_t> ids;
  for (const PrunedTrial& p : d.pruned) ids.push_back(p.trial_id);
  return ids;
}
const CellVerdict& CellOf(const RungDecision& d, const std::string& cell) {
  for (const CellVerdict& c : d.cells)
    if (c.cell == cell) return c;
  ADD_FAILURE() << "no cell " << cell;
  static const CellVerdict none;
  return none;
}

// Cells of docs/reproduction.md (one seed each) as if at a rung: 32/32 is 0.93 behind 2x4/4
// (cheaper), 2x2/4 0.25 behind 8/8; the others are the front.
std::vector<RungTrial> FashionRow() {
  return {Reported(1, "32/32", 1.000, 90.96), Reported(2, "8/8", 0.250, 91.06),
          Reported(3, "4/4", 0.125, 90.39),   Reported(4, "2/2", 0.062, 88.75),
          Reported(5, "1/1", 0.031, 87.06),   Reported(6, "2x1/1", 0.107, 89.25),
          Reported(7, "2x4/4", 0.429, 91.89), Reported(8, "2x2/4", 0.322, 90.81)};
}

struct Case {
  const char* name;
  std::vector<RungTrial> trials;
  RungMargin margin;
  std::vector<int64_t> promoted, pruned, waiting;
  double want_margin;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DecideRungTable : public ::testing::TestWithParam<Case> {};

TEST_P(DecideRungTable, PromotesTheFrontAndTheMargin) {
  const Case& c = GetParam();
  const RungDecision d = DecideRung(c.trials, c.margin);
  EXPECT_THAT(d.promoted, ElementsAreArray(c.promoted));
  EXPECT_THAT(PrunedIds(d), ElementsAreArray(c.pruned));
  EXPECT_THAT(d.waiting, ElementsAreArray(c.waiting));
  EXPECT_DOUBLE_EQ(d.margin, c.want_margin);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DecideRungTable,
    ::testing::Values(
        // Margin 0 prunes exactly the dominated cells.
        Case{"front", FashionRow(), Points(0), {2, 3, 4, 5, 6, 7}, {1, 8}, {}, 0},
        // 0.93 behind: within a 1-point margin, out of a 0.9 one (which keeps 2x2/4).
        Case{"margin_in", FashionRow(), Points(1), {1, 2, 3, 4, 5, 6, 7, 8}, {}, {}, 1},
        Case{"margin_out", FashionRow(), Points(0.9), {2, 3, 4, 5, 6, 7, 8}, {1}, {}, 0.9},
        // Single seeds: auto is the 0.5-point floor, which keeps 2x2/4 (0.25 behind).
        Case{"auto_floor", FashionRow(), Auto(), {2, 3, 4, 5, 6, 7, 8}, {1}, {}, 0.5},
        // Ties stay: the same score at the same cost, and the same score at a higher cost.
        Case{"tie_same_cost",
             {Reported(1, "a", 0.5, 90.0), Reported(2, "b", 0.5, 90.0),
              Reported(3, "c", 0.5, 89.0)},
             Points(0), {1, 2}, {3}, {}, 0},
        Case{"tie_higher_cost",
             {Reported(1, "cheap", 0.1, 90.0), Reported(2, "dear", 0.9, 90.0)},
             Points(0), {1, 2}, {}, {}, 0},
        // Seeds: a cell's score is its seeds' mean (90.5 < 90.6) and its seeds go together.
        Case{"seeds_together",
             {Reported(1, "a", 0.2, 90.6), Reported(2, "a", 0.2, 90.6), Reported(3, "b", 0.4, 90.0),
              Reported(4, "b", 0.4, 91.0)},
             Points(0), {1, 2}, {3, 4}, {}, 0},
        // Auto: twice the largest seed spread (b: 1.0) = 2 points, which keeps b (0.1 behind)
        // and c (1.6 behind) but not d (2.6 behind).
        Case{"auto_spread",
             {Reported(1, "a", 0.2, 90.6), Reported(2, "a", 0.2, 90.6), Reported(3, "b", 0.4, 90.0),
              Reported(4, "b", 0.4, 91.0), Reported(5, "c", 0.5, 89.0), Reported(6, "d", 0.6, 88.0)},
             Auto(), {1, 2, 3, 4, 5}, {6}, {}, 2.0},
        // A pending seed of a promoted cell is promoted with it; one of a pruned cell, or of a
        // cell nobody reported yet, waits for its report.
        Case{"pending_seeds",
             {Reported(1, "a", 0.2, 91.0), Pending(2, "a", 0.2), Reported(3, "b", 0.4, 88.0),
              Pending(4, "b", 0.4), Pending(5, "c", 0.3)},
             Points(1), {1, 2}, {3}, {4, 5}, 1},
        // A failed seed: the other seed is the cell's score; failed and cancelled trials are in
        // no list (they keep their state) and a cell with only those is not judged.
        Case{"failed_and_cancelled",
             {Reported(1, "a", 0.2, 91.0), Failed(2, "a", 0.2), Reported(3, "b", 0.4, 88.0),
              Cancelled(4, "b", 0.4), Failed(5, "c", 0.01), Cancelled(6, "d", 0.01)},
             Points(1), {1}, {3}, {}, 1}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(DecideRung, PrunedTrialsKeepTheirOwnTop1AndEpoch) {
  const RungDecision d = DecideRung(
      {Reported(1, "a", 0.2, 91.0), Reported(2, "b", 0.4, 88.5), Reported(3, "b", 0.4, 87.5)},
      Points(0));
  EXPECT_THAT(d.pruned, ElementsAre(PrunedTrial{2, 88.5, kEpoch}, PrunedTrial{3, 87.5, kEpoch}));
  const CellVerdict& b = CellOf(d, "b");
  EXPECT_DOUBLE_EQ(b.top1, 88.0);
  EXPECT_DOUBLE_EQ(b.spread, 1.0);
  EXPECT_DOUBLE_EQ(b.gap, 3.0);
  EXPECT_EQ(b.seeds, 2);
  EXPECT_FALSE(b.on_front);
  EXPECT_TRUE(CellOf(d, "a").on_front);
}

TEST(DecideRung, WithinTheMarginIsPromotedButNotOnTheFront) {
  const RungDecision d =
      DecideRung({Reported(1, "a", 0.2, 91.0), Reported(2, "b", 0.4, 90.7)}, Points(0.5));
  EXPECT_THAT(d.promoted, ElementsAre(1, 2));
  EXPECT_FALSE(CellOf(d, "b").on_front);
  EXPECT_TRUE(CellOf(d, "b").promoted);
  EXPECT_NEAR(CellOf(d, "b").gap, 0.3, 1e-9);
}

TEST(ParetoSpec, MarginAndPolicyComeFromTheSearchSection) {
  SearchSpec s;
  s.mode = SearchMode::kPareto;
  s.rungs = {2, 5};
  EXPECT_TRUE(MarginOf(s).automatic);
  EXPECT_EQ(PolicyOf(s).quorum, 0.75);
  EXPECT_EQ(PolicyOf(s).timeout, std::chrono::minutes(30));
  s.margin_auto = false;
  s.margin = 0.4;
  s.quorum = 0.5;
  s.rung_timeout_seconds = 90;
  EXPECT_FALSE(MarginOf(s).automatic);
  EXPECT_EQ(MarginOf(s).points, 0.4);
  EXPECT_EQ(PolicyOf(s).quorum, 0.5);
  EXPECT_EQ(PolicyOf(s).timeout, std::chrono::seconds(90));
}

class RungReadyTest : public ::testing::Test {
 protected:
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
        .count();
  }
  FakeClock clock_;
  RungPolicy policy_;  // quorum 0.75, 30 min
};

TEST_F(RungReadyTest, AllLiveTrialsReportedDecidesAtOnce) {
  const int64_t now = NowMs();
  const RungReadiness r = RungReady(
      {Reported(1, "a", 1, 90, now), Reported(2, "b", 1, 90, now), Failed(3, "c", 1),
       Cancelled(4, "d", 1)},
      policy_, clock_);
  EXPECT_TRUE(r.ready) << r.why;
  EXPECT_EQ(r.live, 2);
  EXPECT_EQ(r.reported, 2);
  EXPECT_EQ(r.why, "all 2 live trials reported");
}

TEST_F(RungReadyTest, AFailedTrialDoesNotBlockTheRung) {
  std::vector<RungTrial> trials = {Reported(1, "a", 1, 90, NowMs()), Pending(2, "b", 1)};
  EXPECT_FALSE(RungReady(trials, {1.0, policy_.timeout}, clock_).ready);
  trials[1].state = RungTrialState::kFailed;
  EXPECT_TRUE(RungReady(trials, {1.0, policy_.timeout}, clock_).ready);
}

TEST_F(RungReadyTest, QuorumDecidesOnlyAfterAQuietTimeout) {
  std::vector<RungTrial> trials;
  for (int i = 1; i <= 8; ++i) trials.push_back(Pending(i, "c" + std::to_string(i), i));
  for (int i = 0; i < 5; ++i) trials[i] = Reported(i + 1, trials[i].cell, i + 1, 90, NowMs());
  RungReadiness r = RungReady(trials, policy_, clock_);
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.quorum, 6);  // ceil(0.75 x 8)
  EXPECT_EQ(r.decide_at_ms, 0);
  EXPECT_EQ(r.why, "5 of 8 live trials reported; waiting for all, or for 6 and a quiet timeout");

  clock_.Advance(std::chrono::hours(5));  // below the quorum, time alone decides nothing
  EXPECT_FALSE(RungReady(trials, policy_, clock_).ready);

  trials[5] = Reported(6, trials[5].cell, 6, 90, NowMs());
  r = RungReady(trials, policy_, clock_);
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.decide_at_ms, NowMs() + 30 * 60 * 1000);
  EXPECT_EQ(r.why, "6 of 8 live trials reported; quorum of 6 reached, deciding after 1800 s "
                   "without a report");

  clock_.Advance(std::chrono::minutes(20));
  trials[6] = Reported(7, trials[6].cell, 7, 90, NowMs());  // a report restarts the wait
  clock_.Advance(std::chrono::minutes(20));
  EXPECT_FALSE(RungReady(trials, policy_, clock_).ready);
  clock_.Advance(std::chrono::minutes(10) - std::chrono::milliseconds(1));
  EXPECT_FALSE(RungReady(trials, policy_, clock_).ready);
  clock_.Advance(std::chrono::milliseconds(1));
  r = RungReady(trials, policy_, clock_);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.why, "7 of 8 live trials reported; quorum of 6 reached and no report for 1800 s");
}

TEST_F(RungReadyTest, CancellingTheStragglersDecidesTheRung) {
  std::vector<RungTrial> trials = {Reported(1, "a", 1, 90, NowMs()), Pending(2, "b", 1),
                                   Pending(3, "c", 1)};
  EXPECT_FALSE(RungReady(trials, policy_, clock_).ready);
  trials[1].state = trials[2].state = RungTrialState::kCancelled;
  EXPECT_TRUE(RungReady(trials, policy_, clock_).ready);
  for (RungTrial& t : trials) t.state = RungTrialState::kCancelled;
  const RungReadiness r = RungReady(trials, policy_, clock_);
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.why, "no live trial");
}

// Late reports do not move the decided front: a better cheap late cell prunes nobody, a late cell
// is judged against the decided cells, and a late seed follows its cell.
TEST(ExtendRung, LateReportsAreJudgedAgainstTheDecidedFront) {
  std::vector<RungTrial> trials = {Reported(1, "a", 0.2, 90.0), Reported(2, "b", 0.4, 91.0),
                                   Reported(3, "c", 0.6, 89.0), Pending(4, "c", 0.6),
                                   Pending(5, "d", 0.1),        Pending(6, "e", 0.8)};
  const RungDecision decided = DecideRung(trials, Points(0.5));
  EXPECT_THAT(decided.promoted, ElementsAre(1, 2));
  EXPECT_THAT(PrunedIds(decided), ElementsAre(3));
  EXPECT_THAT(decided.waiting, ElementsAre(4, 5, 6));

  trials[3] = Reported(4, "c", 0.6, 95.0);  // its cell was pruned: pruned with its own top-1
  trials[4] = Reported(5, "d", 0.1, 99.0);  // cheapest and best: promoted, prunes nobody
  trials[5] = Reported(6, "e", 0.8, 90.4);  // 0.6 behind b (d does not count): pruned
  const RungDecision late = ExtendRung(decided, trials);
  EXPECT_THAT(late.promoted, ElementsAre(1, 2, 5));
  EXPECT_THAT(late.pruned, ElementsAre(PrunedTrial{3, 89.0, kEpoch}, PrunedTrial{4, 95.0, kEpoch},
                                       PrunedTrial{6, 90.4, kEpoch}));
  EXPECT_THAT(late.waiting, IsEmpty());
  EXPECT_TRUE(CellOf(late, "d").late);
  EXPECT_FALSE(CellOf(late, "e").promoted);
  EXPECT_NEAR(CellOf(late, "e").gap, 0.6, 1e-9);
  EXPECT_DOUBLE_EQ(late.margin, 0.5);

  // Applying it again changes nothing.
  const RungDecision again = ExtendRung(late, trials);
  EXPECT_EQ(RungDecisionToJson(again), RungDecisionToJson(late));
}

TEST(ExtendRung, ATrialThatFailsAfterTheDecisionLeavesTheLists) {
  std::vector<RungTrial> trials = {Reported(1, "a", 0.2, 90.0), Pending(2, "a", 0.2),
                                   Pending(3, "b", 0.4)};
  const RungDecision decided = DecideRung(trials, Points(0));
  EXPECT_THAT(decided.promoted, ElementsAre(1, 2));
  trials[1].state = RungTrialState::kFailed;
  trials[2].state = RungTrialState::kCancelled;
  const RungDecision late = ExtendRung(decided, trials);
  EXPECT_THAT(late.promoted, ElementsAre(1));
  EXPECT_THAT(late.pruned, IsEmpty());
  EXPECT_THAT(late.waiting, IsEmpty());
}

TEST(RungDecisionJson, RoundTripsAndNamesTheBadField) {
  std::vector<RungTrial> trials = FashionRow();
  trials.push_back(Pending(9, "late", 0.3));
  const RungDecision d = DecideRung(trials, Auto());
  const nlohmann::json j = RungDecisionToJson(d);
  absl::StatusOr<RungDecision> back = RungDecisionFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(RungDecisionToJson(*back), j);
  EXPECT_THAT(back->waiting, ElementsAre(9));
  // What a restarted coordinator reads back judges late reports as the original would.
  trials.back() = Reported(9, "late", 0.3, 80.0);
  EXPECT_EQ(RungDecisionToJson(ExtendRung(*back, trials)),
            RungDecisionToJson(ExtendRung(d, trials)));

  nlohmann::json bad = j;
  bad["cells"][2]["top1"] = "high";
  EXPECT_EQ(RungDecisionFromJson(bad).status().message(), "cells[2].top1: wrong type, got \"high\"");
  bad = j;
  bad["promoted"][0] = 1.5;
  EXPECT_EQ(RungDecisionFromJson(bad).status().message(), "promoted[0]: must be a trial id");
  bad = j;
  bad.erase("margin");
  EXPECT_EQ(RungDecisionFromJson(bad).status().message(), "margin: missing");
  EXPECT_EQ(RungDecisionFromJson(nlohmann::json::array()).status().message(),
            "rung decision: must be an object");
}

}  // namespace
}  // namespace wrpn::server
