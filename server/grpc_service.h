#pragma once
// The gRPC edge: authorises each call by role, runs it on the Coordinator, converts absl::Status
// to grpc::Status and records wrpn_rpc_requests_total / wrpn_rpc_duration_seconds. Holds only
// pointers to objects that outlive it; thread-safe.
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/metrics.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::server {

grpc::Status ToGrpcStatus(const absl::Status& s);

struct RpcMetrics {
  // Declares the OK series of every method at 0, and the latency series of every unary one.
  explicit RpcMetrics(MetricsRegistry* registry);
  // A unary call: counted and its handling time observed.
  void Record(const char* method, const absl::Status& s, double seconds);
  // A streaming call (WatchSweep): counted only; its lifetime is not a latency.
  void RecordStream(const char* method, const absl::Status& s);
  CounterFamily* requests;
  HistogramFamily* duration;
};

class CoordinatorServiceImpl final : public pb::Coordinator::Service {
 public:
  CoordinatorServiceImpl(Coordinator* c, const Authenticator* auth, RpcMetrics* metrics)
      : c_(c), auth_(auth), metrics_(metrics) {}
  grpc::Status SubmitSweep(grpc::ServerContext*, const pb::SubmitSweepRequest*,
                           pb::SubmitSweepResponse*) override;
  grpc::Status GetSweep(grpc::ServerContext*, const pb::GetSweepRequest*,
                        pb::GetSweepResponse*) override;
  grpc::Status ListSweeps(grpc::ServerContext*, const pb::ListSweepsRequest*,
                          pb::ListSweepsResponse*) override;
  grpc::Status CancelSweep(grpc::ServerContext*, const pb::CancelSweepRequest*,
                           pb::CancelSweepResponse*) override;
  grpc::Status RetrySweep(grpc::ServerContext*, const pb::RetrySweepRequest*,
                          pb::RetrySweepResponse*) override;
  grpc::Status ListTrials(grpc::ServerContext*, const pb::ListTrialsRequest*,
                          pb::ListTrialsResponse*) override;
  grpc::Status GetTrial(grpc::ServerContext*, const pb::GetTrialRequest*,
                        pb::GetTrialResponse*) override;
  grpc::Status GetTrialMetrics(grpc::ServerContext*, const pb::GetTrialMetricsRequest*,
                               pb::GetTrialMetricsResponse*) override;
  grpc::Status WatchSweep(grpc::ServerContext*, const pb::WatchSweepRequest*,
                          grpc::ServerWriter<pb::WatchSweepResponse>*) override;
  grpc::Status GetGrid(grpc::ServerContext*, const pb::GetGridRequest*,
                       pb::GetGridResponse*) override;
  grpc::Status GetPaperTables(grpc::ServerContext*, const pb::GetPaperTablesRequest*,
                              pb::GetPaperTablesResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const pb::ListWorkersRequest*,
                           pb::ListWorkersResponse*) override;
  grpc::Status DrainWorker(grpc::ServerContext*, const pb::DrainWorkerRequest*,
                           pb::DrainWorkerResponse*) override;
  grpc::Status GetTrialLogs(grpc::ServerContext*, const pb::GetTrialLogsRequest*,
                            pb::GetTrialLogsResponse*) override;

 private:
  Coordinator* c_;
  const Authenticator* auth_;
  RpcMetrics* metrics_;
};

class WorkerServiceImpl final : public pb::WorkerService::Service {
 public:
  WorkerServiceImpl(Coordinator* c, const Authenticator* auth, RpcMetrics* metrics)
      : c_(c), auth_(auth), metrics_(metrics) {}
  grpc::Status RegisterWorker(grpc::ServerContext*, const pb::RegisterWorkerRequest*,
                              pb::RegisterWorkerResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest*,
                         pb::HeartbeatResponse*) override;
  grpc::Status AcquireTrial(grpc::ServerContext*, const pb::AcquireTrialRequest*,
                            pb::AcquireTrialResponse*) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const pb::ReportMetricsRequest*,
                             pb::ReportMetricsResponse*) override;
  grpc::Status ReportCheckpoint(grpc::ServerContext*, const pb::ReportCheckpointRequest*,
                                pb::ReportCheckpointResponse*) override;
  grpc::Status CompleteTrial(grpc::ServerContext*, const pb::CompleteTrialRequest*,
                             pb::CompleteTrialResponse*) override;
  grpc::Status ReportLogs(grpc::ServerContext*, const pb::ReportLogsRequest*,
                          pb::ReportLogsResponse*) override;
  grpc::Status ReportRendezvous(grpc::ServerContext*, const pb::ReportRendezvousRequest*,
                                pb::ReportRendezvousResponse*) override;

 private:
  Coordinator* c_;
  const Authenticator* auth_;
  RpcMetrics* metrics_;
};

}  // namespace wrpn::server
