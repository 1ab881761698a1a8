#pragma once
// The coordinator's Prometheus families (registered once, with their help texts and the series
// exported at 0 from the start) and StateGauges, the by-state gauges computed from the working
// set at each scrape. The families are thread-safe (server/metrics.h); StateGauges is a value.
#include <map>
#include <string>
#include <utility>

#include "server/gpu_ledger.h"
#include "server/metrics.h"
#include "server/record_proto.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

struct CoordinatorMetrics {
  explicit CoordinatorMetrics(MetricsRegistry* registry);
  // The per-worker gauges from the throughput, data wait and GPU memory points a worker's
  // trainer reported (non-finite values are ignored).
  void RecordWorkerPoints(const std::string& worker, const pb::ReportMetricsRequest& req);

  CounterFamily* lease_expirations;
  CounterFamily* attempts_total;
  CounterFamily* points_ingested;
  CounterFamily* rung_decisions;  // Pareto-pruned sweeps' rungs decided
  HistogramFamily* queue_wait;
  HistogramFamily* trial_duration;
  GaugeFamily* sweeps;
  GaugeFamily* trials;
  GaugeFamily* workers;
  GaugeFamily* top1;
  GaugeFamily* worker_images;      // latest images/s a worker's trainer reported
  GaugeFamily* worker_data_wait;   // latest data_wait_ms_per_step a worker's trainer reported
  GaugeFamily* worker_gpu_memory;  // latest GPU memory in use a worker's trainer reported
  GaugeFamily* worker_gpu_share;   // share of each GPU the trials placed on it hold now
};

// Sweeps, trials and workers by state, and the mean final top-1 of succeeded trials per
// (sweep, network, width, wbits, abits); every state is present, at 0 when nothing is in it.
class StateGauges {
 public:
  StateGauges();
  void AddSweep(const SweepRecord& s, const TrialCounts& counts);
  void AddTrial(const TrialRecord& t);  // counts toward top-1 only when succeeded with a result
  void AddWorker(const WorkerRecord& w);
  // The share of each of `w`'s GPUs its leases hold (`gpus`); lost workers are left out.
  void AddWorkerGpus(const WorkerRecord& w, const GpuLedger& gpus);
  void PublishTo(CoordinatorMetrics& m);

 private:
  std::map<LabelValues, double> sweeps_, trials_, workers_, gpu_shares_;
  std::map<LabelValues, std::pair<double, int>> top1_sums_;
};

}  // namespace wrpn::server
