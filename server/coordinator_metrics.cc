#include "server/coordinator_metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/trainer_protocol.h"

namespace wrpn::server {
namespace {

const char* const kSweepStates[] = {"queued", "running", "succeeded", "failed", "cancelled"};

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(MetricsRegistry* registry) {
  lease_expirations = registry->AddCounter(
      "wrpn_lease_expirations_total", "Leases that ran past their TTL without a heartbeat.");
  attempts_total = registry->AddCounter("wrpn_trial_attempts_total",
                                        "Trial attempts ended, by outcome.", {"outcome"});
  for (AttemptOutcome o : {AttemptOutcome::kSucceeded, AttemptOutcome::kFailed,
                           AttemptOutcome::kExpired, AttemptOutcome::kCancelled,
                           AttemptOutcome::kRung})
    attempts_total->Declare({AttemptOutcomeName(o)});  // exported at 0 from the start
  rung_decisions = registry->AddCounter(
      "wrpn_rung_decisions_total",
      "Rungs of Pareto-pruned sweeps decided (each promotes the cells near the front).");
  points_ingested = registry->AddCounter("wrpn_metric_points_ingested_total",
                                         "Metric points stored from ReportMetrics.");
  queue_wait = registry->AddHistogram(
      "wrpn_trial_queue_wait_seconds", "Time a trial waited in the queue before a lease.", {},
      MetricsRegistry::ExponentialBuckets(0.01, 4, 12));
  trial_duration = registry->AddHistogram(
      "wrpn_trial_duration_seconds", "Duration of successful trial attempts.", {},
      MetricsRegistry::ExponentialBuckets(1, 3, 12));
  sweeps = registry->AddGauge("wrpn_sweeps", "Sweeps by state.", {"state"});
  trials = registry->AddGauge("wrpn_trials", "Trials by state.", {"state"});
  workers = registry->AddGauge("wrpn_workers", "Registered workers by state.", {"state"});
  top1 = registry->AddGauge(
      "wrpn_trial_top1", "Final top-1 accuracy of succeeded trials (mean over seeds), percent.",
      {"sweep", "network", "width", "wbits", "abits"});
  worker_images = registry->AddGauge(
      "wrpn_worker_images_per_second",
      "Training throughput last reported by a worker's trainer (images/s).", {"worker"});
  worker_gpu_memory = registry->AddGauge(
      "wrpn_worker_gpu_memory_bytes", "GPU memory in use last reported by a worker's trainer.",
      {"worker"});
  worker_data_wait = registry->AddGauge(
      "wrpn_worker_data_wait_ms_per_step",
      "Time per training step a worker's trainer last waited for input data (ms).", {"worker"});
  worker_gpu_share = registry->AddGauge(
      "wrpn_worker_gpu_share",
      "Share of each GPU held by the trials placed on it (0..1; 1 = a whole-GPU trial or full).",
      {"worker", "gpu"});
}

void CoordinatorMetrics::RecordWorkerPoints(const std::string& worker,
                                            const pb::ReportMetricsRequest& req) {
  for (const pb::MetricPoint& p : req.points()) {
    if (!std::isfinite(p.value())) continue;
    if (p.name() == metric::kImagesPerSec) worker_images->Set({worker}, p.value());
    if (p.name() == metric::kGpuMemoryBytes) worker_gpu_memory->Set({worker}, p.value());
    if (p.name() == metric::kDataWaitMsPerStep) worker_data_wait->Set({worker}, p.value());
  }
}

StateGauges::StateGauges() {
  for (const char* s : kSweepStates) sweeps_[{s}] = 0;
  for (int s = 1; s < kTrialStateCount; ++s) trials_[{TrialStateName(static_cast<TrialState>(s))}] = 0;
  for (const char* s : {"alive", "draining", "lost"}) workers_[{s}] = 0;
}

void StateGauges::AddSweep(const SweepRecord& s, const TrialCounts& counts) {
  sweeps_[{kSweepStates[SweepStateOf(s, counts) - 1]}] += 1;
  for (int st = 1; st < kTrialStateCount; ++st)
    trials_[{TrialStateName(static_cast<TrialState>(st))}] += static_cast<double>(counts[st]);
}

void StateGauges::AddTrial(const TrialRecord& t) {
  if (t.state != TrialState::kSucceeded || !t.final_top1) return;
  auto& acc = top1_sums_[{absl::StrCat(t.sweep_id), t.network, absl::StrCat(t.width),
                          absl::StrCat(t.wbits), absl::StrCat(t.abits)}];
  acc.first += *t.final_top1;
  acc.second++;
}

void StateGauges::AddWorker(const WorkerRecord& w) { workers_[{WorkerStateName(w)}] += 1; }

void StateGauges::AddWorkerGpus(const WorkerRecord& w, const GpuLedger& gpus) {
  if (!w.lost) gpus.ShareGauge(w.id, w.name.empty() ? w.id : w.name, w.gpus, &gpu_shares_);
}

void StateGauges::PublishTo(CoordinatorMetrics& m) {
  std::map<LabelValues, double> top1;
  for (const auto& [k, v] : top1_sums_) top1[k] = v.first / v.second;
  m.sweeps->Replace(std::move(sweeps_));
  m.trials->Replace(std::move(trials_));
  m.workers->Replace(std::move(workers_));
  m.top1->Replace(std::move(top1));
  m.worker_gpu_share->Replace(std::move(gpu_shares_));
}

}  // namespace wrpn::server
