// ParseSpecOf and PlanSweep: a SubmitSweep request's spec, parsed, expanded and costed.
#include "server/sweep_submission.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"

namespace wrpn::server {
namespace {

// The message form of "name: s, axes: {network: lenet5, width: [1, 2], precision: [4/4]}".
pb::SubmitSweepRequest Lenet44Message() {
  pb::SubmitSweepRequest msg;
  msg.mutable_spec()->set_name("s");
  auto* axes = msg.mutable_spec()->add_axes();
  axes->add_network("lenet5");
  axes->add_width(1);
  axes->add_width(2);
  axes->add_wbits(4);
  axes->add_abits(4);
  return msg;
}

TEST(SweepSubmission, TextAndMessageSpecsAreTheSameSweep) {
  pb::SubmitSweepRequest text;
  text.set_spec_text("name: s\naxes: {network: lenet5, width: [1, 2], precision: [\"4/4\"]}\n");
  auto a = ParseSpecOf(text);
  ASSERT_TRUE(a.ok()) << a.status();
  const pb::SubmitSweepRequest msg = Lenet44Message();
  auto b = ParseSpecOf(msg);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(SweepSpecToJson(*a), SweepSpecToJson(*b));
}

// A pareto search as a message (margin a number or "auto") is the same sweep as the text form.
TEST(SweepSubmission, ASearchSectionAsAMessageIsTheTextsSearch) {
  const std::string axes = "axes: {network: lenet5, width: [1, 2], precision: [\"4/4\"]}\n";
  for (const bool automatic : {true, false}) {
    pb::SubmitSweepRequest text;
    text.set_spec_text("name: s\n" + axes +
                       (automatic ? "search: {mode: pareto, rungs: [2, 5]}\n"
                                  : "search: {mode: pareto, rungs: [2, 5], margin: 0.75, quorum: "
                                    "0.5, rung_timeout: 60}\n"));
    auto a = ParseSpecOf(text);
    ASSERT_TRUE(a.ok()) << a.status();
    pb::SubmitSweepRequest msg = Lenet44Message();
    pb::Search* search = msg.mutable_spec()->mutable_search();
    search->set_mode("pareto");
    search->add_rungs(2);
    search->add_rungs(5);
    if (!automatic) {
      search->mutable_margin()->set_number_value(0.75);
      search->set_quorum(0.5);
      search->set_rung_timeout(60);
    }
    auto b = ParseSpecOf(msg);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->search, a->search);
    EXPECT_EQ(b->search.mode, SearchMode::kPareto);
    EXPECT_EQ(b->search.margin_auto, automatic);
    search->mutable_margin()->set_string_value("auto");
    auto c = ParseSpecOf(msg);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->search.margin_auto);
  }
  pb::SubmitSweepRequest grid;
  grid.set_spec_text("name: s\n" + axes + "search: {mode: grid}\n");
  EXPECT_TRUE(ParseSpecOf(grid).ok()) << ParseSpecOf(grid).status();
  pb::SubmitSweepRequest bad;
  bad.mutable_spec()->add_axes()->add_network("lenet5");
  bad.mutable_spec()->mutable_axes(0)->add_width(1);
  bad.mutable_spec()->mutable_search()->set_mode("pareto");
  bad.mutable_spec()->mutable_search()->mutable_margin()->set_string_value("wide");
  EXPECT_TRUE(absl::StrContains(ParseSpecOf(bad).status().message(),
                                "search.margin: must be a number of points >= 0 or \"auto\", got \"wide\""))
      << ParseSpecOf(bad).status();
}

TEST(SweepSubmission, ABadOrMissingSpecNamesTheField) {
  pb::SubmitSweepRequest none;
  EXPECT_EQ(ParseSpecOf(none).status().message(), "spec: give spec or spec_text");
  pb::SubmitSweepRequest bad;
  bad.set_spec_text("axes: {network: lenet5, widht: [1], precision: [\"4/4\"]}");
  auto r = ParseSpecOf(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "did you mean 'width'")) << r.status();
}

TEST(SweepSubmission, PlanHasOneCostedTrialPerPoint) {
  pb::SubmitSweepRequest req;
  req.set_spec_text(R"(
name: grid
priority: 3
max_attempts: 5
axes: {network: lenet5, width: [1, 2], precision: ["32/32", "4/4"], seed: [1, 2]}
resources: {gpus_per_node: 1}
)");
  auto spec = ParseSpecOf(req);
  ASSERT_TRUE(spec.ok()) << spec.status();
  PlannedSweep plan = PlanSweep(*spec);
  EXPECT_EQ(plan.sweep.name, "grid");
  EXPECT_EQ(plan.sweep.priority, 3);
  EXPECT_EQ(plan.sweep.max_attempts, 5);
  EXPECT_EQ(plan.sweep.trial_count, 8);
  ASSERT_EQ(plan.trials.size(), 8u);
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    const TrialRecord& t = plan.trials[i];
    EXPECT_EQ(t.index, static_cast<int64_t>(i));
    EXPECT_EQ(t.gpus_per_node, 1);
    EXPECT_EQ(t.state, TrialState::kQueued);
    EXPECT_GT(t.cost_uniform, 0) << i;
    EXPECT_EQ(nlohmann::json::parse(t.config_json).value("network", ""), "lenet5");
  }
  // Same network, width and precision: the same cost, whatever the seed.
  const auto same = [&](const TrialRecord& a, const TrialRecord& b) {
    return a.width == b.width && a.wbits == b.wbits && a.seed != b.seed;
  };
  for (const TrialRecord& a : plan.trials)
    for (const TrialRecord& b : plan.trials)
      if (same(a, b)) EXPECT_EQ(a.cost_uniform, b.cost_uniform);
}

// recipe.init_from: fp32 plans the FP32 trial of each (network, width, seed) the grid lacks,
// after the spec's own trials; every trial keeps its scheme.
TEST(SweepSubmission, InitFromFp32PlansTheMissingFp32TrialsLast) {
  pb::SubmitSweepRequest req;
  req.set_spec_text(R"(
axes: {network: lenet5, width: [1, 2], precision: ["2/2"], scheme: [lsq, pact]}
recipe: {init_from: fp32}
)");
  auto spec = ParseSpecOf(req);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(CountTrials(*spec), 4);
  EXPECT_EQ(PlannedTrialCount(*spec), 6);
  const PlannedSweep plan = PlanSweep(*spec);
  EXPECT_EQ(plan.sweep.trial_count, 6);
  ASSERT_EQ(plan.trials.size(), 6u);
  EXPECT_EQ(plan.trials[0].scheme, "lsq");
  EXPECT_EQ(plan.trials[1].scheme, "pact");
  for (size_t i : {4u, 5u}) {
    EXPECT_EQ(plan.trials[i].wbits, 32) << i;
    EXPECT_EQ(plan.trials[i].abits, 32) << i;
    EXPECT_EQ(plan.trials[i].scheme, "wrpn") << i;
    EXPECT_EQ(plan.trials[i].index, static_cast<int64_t>(i));
  }
  EXPECT_EQ(plan.trials[4].width, 1);
  EXPECT_EQ(plan.trials[5].width, 2);

  pb::SubmitSweepRequest plain;
  plain.set_spec_text("axes: {network: lenet5, width: 1, precision: [\"2/2\"], scheme: lsq}");
  auto p = ParseSpecOf(plain);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(PlannedTrialCount(*p), 1);
  EXPECT_EQ(PlanSweep(*p).trials.size(), 1u);
}

}  // namespace
}  // namespace wrpn::server
