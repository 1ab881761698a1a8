#pragma once
// Request validation at the gRPC edge: every field of every request is checked against the
// limits below before the Coordinator sees it (after authentication). A bad field is
// INVALID_ARGUMENT whose message starts with the field's name, e.g. `sweep_id: must be > 0,
// got -1` or `points[3].value: must be finite, got nan`; nothing is read or written. Pure
// functions; thread-safe. The message size itself is bounded by gRPC (server.h).
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "common/sweep_spec.h"
#include "common/trainer_protocol.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

struct RequestLimits {
  static constexpr size_t kMaxIdBytes = 128;          // worker_id, lease_id
  static constexpr size_t kMaxNameBytes = 256;        // names, addresses, labels, metric names
  static constexpr size_t kMaxPathBytes = 4096;       // checkpoint paths
  static constexpr size_t kMaxTextBytes = 64 << 10;   // failure reasons, one log line
  static constexpr size_t kMaxSpecBytes = kMaxSweepSpecBytes;  // SubmitSweep.spec_text
  static constexpr size_t kMaxPageTokenBytes = 32;
  static constexpr int kMaxMetricPoints = 100000;     // per ReportMetrics (the agent's backlog cap)
  static constexpr int kMaxLogLines = 5000;           // per ReportLogs
  static constexpr int kMaxLeases = 1024;             // per Heartbeat
  static constexpr int kMaxGpus = 1024;               // per worker
  static constexpr int kMaxLabels = 64;
  static constexpr int kMaxTrialsPerAcquire = 1024;
  static constexpr int kMaxCpuTrials = 1024;
  static constexpr int kMaxCpus = 1 << 20;
};

[[nodiscard]] absl::Status ValidateRequest(const pb::SubmitSweepRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetSweepRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ListSweepsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::CancelSweepRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::RetrySweepRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ListTrialsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetTrialRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetTrialMetricsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::WatchSweepRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetGridRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetPaperTablesRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ListWorkersRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::DrainWorkerRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::GetTrialLogsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::RegisterWorkerRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::HeartbeatRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::AcquireTrialRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ReportMetricsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ReportCheckpointRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::CompleteTrialRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ReportLogsRequest& r);
[[nodiscard]] absl::Status ValidateRequest(const pb::ReportRendezvousRequest& r);
// The kind of a validated failure: failure_kind, else the kind's name, else internal.
[[nodiscard]] FailureKind FailureKindOf(const pb::TrialFailure& f);
// A request without an overload above (a newly added RPC) gets only the gRPC size limit; add one.
template <typename Request>
[[nodiscard]] absl::Status ValidateRequest(const Request&) {
  return absl::OkStatus();
}

}  // namespace wrpn::server
