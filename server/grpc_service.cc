#include "server/grpc_service.h"

#include <chrono>
#include <iostream>
#include <string>

#include "server/validate.h"

namespace wrpn::server {
namespace {

std::string_view AuthHeader(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

template <typename Resp, typename Fn>
grpc::Status Handle(const Authenticator* auth, RpcMetrics* metrics, grpc::ServerContext* ctx,
                    const char* method, Role role, Resp* out, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status st = auth->Check(AuthHeader(ctx), role);
  if (st.ok()) {
    auto r = fn();
    if (r.ok()) *out = *std::move(r);
    else st = r.status();
  }
  metrics->Record(method, st,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return ToGrpcStatus(st);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // Details meant for the operator (a store error's SQL) stay in the coordinator's log; the
  // client gets the message only.
  bool detailed = false;
  s.ForEachPayload([&](absl::string_view, const absl::Cord&) { detailed = true; });
  if (detailed) std::cerr << "wrpn-coordinator: " << s.ToString() << "\n";
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

RpcMetrics::RpcMetrics(MetricsRegistry* registry)
    : requests(registry->AddCounter("wrpn_rpc_requests_total",
                                    "gRPC requests handled, by method and status code.",
                                    {"method", "code"})),
      duration(registry->AddHistogram("wrpn_rpc_duration_seconds",
                                      "gRPC request handling time, by method.", {"method"},
                                      MetricsRegistry::ExponentialBuckets(0.0001, 4, 10))) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* name : {"wrpn.v1.Coordinator", "wrpn.v1.WorkerService"}) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      requests->Declare({m->name(), absl::StatusCodeToString(absl::StatusCode::kOk)});
      if (!m->client_streaming() && !m->server_streaming()) duration->Declare({m->name()});
    }
  }
}

void RpcMetrics::Record(const char* method, const absl::Status& s, double seconds) {
  RecordStream(method, s);
  duration->Observe({method}, seconds);
}

void RpcMetrics::RecordStream(const char* method, const absl::Status& s) {
  requests->Inc({method, absl::StatusCodeToString(s.code())});
}

#define WRPN_RPC(Service, Method, RoleValue, Req, Resp)                                      \
  grpc::Status Service::Method(grpc::ServerContext* ctx, const pb::Req* req, pb::Resp* out) { \
    return Handle(auth_, metrics_, ctx, #Method, RoleValue, out,                               \
                  [&]() -> absl::StatusOr<pb::Resp> {                                          \
                    if (absl::Status v = ValidateRequest(*req); !v.ok()) return v;             \
                    return c_->Method(*req);                                                   \
                  });                                                                          \
  }

WRPN_RPC(CoordinatorServiceImpl, SubmitSweep, Role::kAdmin, SubmitSweepRequest,
         SubmitSweepResponse)
WRPN_RPC(CoordinatorServiceImpl, GetSweep, Role::kViewer, GetSweepRequest, GetSweepResponse)
WRPN_RPC(CoordinatorServiceImpl, ListSweeps, Role::kViewer, ListSweepsRequest, ListSweepsResponse)
WRPN_RPC(CoordinatorServiceImpl, CancelSweep, Role::kAdmin, CancelSweepRequest,
         CancelSweepResponse)
WRPN_RPC(CoordinatorServiceImpl, RetrySweep, Role::kAdmin, RetrySweepRequest, RetrySweepResponse)
WRPN_RPC(CoordinatorServiceImpl, ListTrials, Role::kViewer, ListTrialsRequest, ListTrialsResponse)
WRPN_RPC(CoordinatorServiceImpl, GetTrial, Role::kViewer, GetTrialRequest, GetTrialResponse)
WRPN_RPC(CoordinatorServiceImpl, GetTrialMetrics, Role::kViewer, GetTrialMetricsRequest,
         GetTrialMetricsResponse)
WRPN_RPC(CoordinatorServiceImpl, GetGrid, Role::kViewer, GetGridRequest, GetGridResponse)
WRPN_RPC(CoordinatorServiceImpl, GetPaperTables, Role::kViewer, GetPaperTablesRequest,
         GetPaperTablesResponse)
WRPN_RPC(CoordinatorServiceImpl, ListWorkers, Role::kViewer, ListWorkersRequest,
         ListWorkersResponse)
WRPN_RPC(CoordinatorServiceImpl, GetTrialLogs, Role::kViewer, GetTrialLogsRequest,
         GetTrialLogsResponse)
WRPN_RPC(CoordinatorServiceImpl, DrainWorker, Role::kAdmin, DrainWorkerRequest,
         DrainWorkerResponse)
WRPN_RPC(WorkerServiceImpl, RegisterWorker, Role::kWorker, RegisterWorkerRequest,
         RegisterWorkerResponse)
WRPN_RPC(WorkerServiceImpl, Heartbeat, Role::kWorker, HeartbeatRequest, HeartbeatResponse)
WRPN_RPC(WorkerServiceImpl, AcquireTrial, Role::kWorker, AcquireTrialRequest, AcquireTrialResponse)
WRPN_RPC(WorkerServiceImpl, ReportMetrics, Role::kWorker, ReportMetricsRequest,
         ReportMetricsResponse)
WRPN_RPC(WorkerServiceImpl, ReportCheckpoint, Role::kWorker, ReportCheckpointRequest,
         ReportCheckpointResponse)
WRPN_RPC(WorkerServiceImpl, CompleteTrial, Role::kWorker, CompleteTrialRequest,
         CompleteTrialResponse)
WRPN_RPC(WorkerServiceImpl, ReportLogs, Role::kWorker, ReportLogsRequest, ReportLogsResponse)
WRPN_RPC(WorkerServiceImpl, ReportRendezvous, Role::kWorker, ReportRendezvousRequest,
         ReportRendezvousResponse)
#undef WRPN_RPC

grpc::Status CoordinatorServiceImpl::WatchSweep(grpc::ServerContext* ctx,
                                                const pb::WatchSweepRequest* req,
                                                grpc::ServerWriter<pb::WatchSweepResponse>* w) {
  absl::Status st = auth_->Check(AuthHeader(ctx), Role::kViewer);
  if (st.ok()) st = ValidateRequest(*req);
  if (st.ok()) {
    st = c_->WatchSweep(
        *req, [&](const pb::WatchSweepResponse& r) { return w->Write(r); },
        [&] { return ctx->IsCancelled(); });
  }
  metrics_->RecordStream("WatchSweep", st);
  return ToGrpcStatus(st);
}

}  // namespace wrpn::server
