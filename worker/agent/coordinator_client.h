#pragma once
// CoordinatorClient: the agent's view of the coordinator's WorkerService, one method per RPC,
// errors as absl::Status (FAILED_PRECONDITION = the lease is no longer ours, NOT_FOUND on
// Heartbeat/AcquireTrial = the coordinator forgot this worker, UNAVAILABLE/DEADLINE_EXCEEDED =
// retry later). GrpcCoordinatorClient implements it over a gRPC channel; it owns the stub and is
// thread-safe.
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::agent {

namespace pb = ::wrpn::v1;

// Worth retrying: everything but "the lease is not ours" (FAILED_PRECONDITION, NOT_FOUND) and
// "the request is wrong" (INVALID_ARGUMENT, UNIMPLEMENTED). A coordinator shutting down answers
// CANCELLED or UNAVAILABLE; a bad token (UNAUTHENTICATED) is retried until an operator fixes it.
bool IsTransient(const absl::Status& s);

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;
  virtual absl::StatusOr<pb::RegisterWorkerResponse> RegisterWorker(
      const pb::RegisterWorkerRequest& req) = 0;
  virtual absl::StatusOr<pb::HeartbeatResponse> Heartbeat(const pb::HeartbeatRequest& req) = 0;
  virtual absl::StatusOr<pb::AcquireTrialResponse> AcquireTrial(
      const pb::AcquireTrialRequest& req) = 0;
  virtual absl::StatusOr<pb::ReportMetricsResponse> ReportMetrics(
      const pb::ReportMetricsRequest& req) = 0;
  virtual absl::Status ReportCheckpoint(const pb::ReportCheckpointRequest& req) = 0;
  virtual absl::Status CompleteTrial(const pb::CompleteTrialRequest& req) = 0;
  virtual absl::Status ReportLogs(const pb::ReportLogsRequest& req) = 0;
  virtual absl::Status ReportRendezvous(const pb::ReportRendezvousRequest& req) = 0;
};

struct GrpcClientOptions {
  std::string target;          // host:port of the coordinator
  std::string token;           // bearer token of the worker role ("" = none)
  std::string tls_ca;          // PEM file of the CA to trust ("" = plaintext)
  std::chrono::milliseconds deadline{10000};  // per call
};

// Creates the channel (lazily connected: an unreachable coordinator shows up as UNAVAILABLE on
// the first call, not here). Fails only on unreadable TLS files.
absl::StatusOr<std::unique_ptr<CoordinatorClient>> MakeGrpcCoordinatorClient(
    const GrpcClientOptions& options);

}  // namespace wrpn::agent
