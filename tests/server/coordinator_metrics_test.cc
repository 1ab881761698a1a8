// CoordinatorMetrics and StateGauges: the families, and the by-state gauges of a scrape.
#include "server/coordinator_metrics.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace wrpn::server {
namespace {

TEST(CoordinatorMetrics, EveryStateIsExportedFromTheStart) {
  MetricsRegistry registry;
  CoordinatorMetrics m(&registry);
  StateGauges().PublishTo(m);
  const std::string text = registry.Render();
  EXPECT_TRUE(absl::StrContains(text, "wrpn_sweeps{state=\"cancelled\"} 0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "wrpn_trials{state=\"queued\"} 0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "wrpn_workers{state=\"lost\"} 0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "wrpn_trial_attempts_total{outcome=\"expired\"} 0")) << text;
}

TEST(CoordinatorMetrics, GaugesFromTheWorkingSet) {
  MetricsRegistry registry;
  CoordinatorMetrics m(&registry);
  StateGauges g;
  SweepRecord s;
  s.id = 1;
  s.trial_count = 3;
  g.AddSweep(s, {0, 1, 0, 2, 0, 0});
  TrialRecord t;
  t.sweep_id = 1;
  t.network = "lenet5";
  t.width = 2;
  t.wbits = 4;
  t.abits = 4;
  t.state = TrialState::kSucceeded;
  t.final_top1 = 98;
  g.AddTrial(t);
  t.final_top1 = 96;
  g.AddTrial(t);
  t.state = TrialState::kFailed;
  g.AddTrial(t);  // not succeeded: not in the mean
  WorkerRecord w;
  w.draining = true;
  g.AddWorker(w);
  g.PublishTo(m);
  const std::string text = registry.Render();
  EXPECT_TRUE(absl::StrContains(text, "wrpn_sweeps{state=\"running\"} 1")) << text;
  EXPECT_TRUE(absl::StrContains(text, "wrpn_trials{state=\"succeeded\"} 2")) << text;
  EXPECT_TRUE(absl::StrContains(text, "wrpn_workers{state=\"draining\"} 1")) << text;
  EXPECT_TRUE(absl::StrContains(
      text, "wrpn_trial_top1{sweep=\"1\",network=\"lenet5\",width=\"2\",wbits=\"4\",abits=\"4\"} 97"))
      << text;
}

TEST(CoordinatorMetrics, WorkerPointsSetTheWorkerGauges) {
  MetricsRegistry registry;
  CoordinatorMetrics m(&registry);
  pb::ReportMetricsRequest req;
  auto* p = req.add_points();
  p->set_name("images_per_sec");
  p->set_value(1200);
  p = req.add_points();
  p->set_name("loss");
  p->set_value(1);
  m.RecordWorkerPoints("gpu-node", req);
  const std::string text = registry.Render();
  EXPECT_TRUE(absl::StrContains(text, "wrpn_worker_images_per_second{worker=\"gpu-node\"} 1200"))
      << text;
}

}  // namespace
}  // namespace wrpn::server
