#include "worker/agent/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_limits.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::agent {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const char* method) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(method, ": ", s.error_message()));
}

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel, GrpcClientOptions options)
      : stub_(pb::WorkerService::NewStub(std::move(channel))), options_(std::move(options)) {}

  absl::StatusOr<pb::RegisterWorkerResponse> RegisterWorker(
      const pb::RegisterWorkerRequest& req) override {
    return Call(&pb::WorkerService::Stub::RegisterWorker, req, "RegisterWorker");
  }
  absl::StatusOr<pb::HeartbeatResponse> Heartbeat(const pb::HeartbeatRequest& req) override {
    return Call(&pb::WorkerService::Stub::Heartbeat, req, "Heartbeat");
  }
  absl::StatusOr<pb::AcquireTrialResponse> AcquireTrial(
      const pb::AcquireTrialRequest& req) override {
    return Call(&pb::WorkerService::Stub::AcquireTrial, req, "AcquireTrial");
  }
  absl::StatusOr<pb::ReportMetricsResponse> ReportMetrics(
      const pb::ReportMetricsRequest& req) override {
    return Call(&pb::WorkerService::Stub::ReportMetrics, req, "ReportMetrics");
  }
  absl::Status ReportCheckpoint(const pb::ReportCheckpointRequest& req) override {
    return Call(&pb::WorkerService::Stub::ReportCheckpoint, req, "ReportCheckpoint").status();
  }
  absl::Status CompleteTrial(const pb::CompleteTrialRequest& req) override {
    return Call(&pb::WorkerService::Stub::CompleteTrial, req, "CompleteTrial").status();
  }
  absl::Status ReportLogs(const pb::ReportLogsRequest& req) override {
    return Call(&pb::WorkerService::Stub::ReportLogs, req, "ReportLogs").status();
  }
  absl::Status ReportRendezvous(const pb::ReportRendezvousRequest& req) override {
    return Call(&pb::WorkerService::Stub::ReportRendezvous, req, "ReportRendezvous").status();
  }

 private:
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(grpc::Status (pb::WorkerService::Stub::*method)(grpc::ClientContext*,
                                                                             const Req&, Resp*),
                            const Req& req, const char* name) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.deadline);
    if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
    Resp resp;
    grpc::Status s = (stub_.get()->*method)(&ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, name);
    return resp;
  }

  std::unique_ptr<pb::WorkerService::Stub> stub_;
  const GrpcClientOptions options_;
};

}  // namespace

bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnimplemented:
      return false;
    default:
      return true;
  }
}

absl::StatusOr<std::unique_ptr<CoordinatorClient>> MakeGrpcCoordinatorClient(
    const GrpcClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("coordinator: address is empty");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.tls_ca.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    std::ifstream in(options.tls_ca);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("--tls-ca: cannot read '", options.tls_ca, "'"));
    }
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // Reconnect within about a second of a restarted coordinator coming back, well inside the
  // lease TTL its leases get again on load.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC also takes this as the connect timeout: a short one never connects to a coordinator
  // busy reloading (or a loaded machine), whose handshake takes longer.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetMaxReceiveMessageSize(kGrpcMaxResponseBytes);
  args.SetMaxSendMessageSize(kGrpcMaxRequestBytes);
  auto channel = grpc::CreateCustomChannel(options.target, creds, args);
  return std::unique_ptr<CoordinatorClient>(new GrpcCoordinatorClient(channel, options));
}

}  // namespace wrpn::agent
