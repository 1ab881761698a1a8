#pragma once
// FakeCoordinatorClient: a scripted agent::CoordinatorClient. Tests queue leases, commands and
// errors, and read back every request the agent sent. Every request first goes through the
// server's own ValidateRequest (server/validate.h): what the real coordinator refuses, the fake
// refuses with the same INVALID_ARGUMENT and records in `rejected`, never in the lists below.
// Thread-safe.
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "server/validate.h"
#include "worker/agent/coordinator_client.h"

namespace wrpn::agent {

class FakeCoordinatorClient final : public CoordinatorClient {
 public:
  absl::StatusOr<pb::RegisterWorkerResponse> RegisterWorker(
      const pb::RegisterWorkerRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    registers.push_back(req);
    if (auto s = Pop(register_errors); !s.ok()) return s;
    pb::RegisterWorkerResponse resp;
    resp.set_worker_id("w-" + std::to_string(registers.size()));
    resp.set_lease_ttl_ms(lease_ttl_ms);
    resp.set_heartbeat_interval_ms(lease_ttl_ms / 3);
    return resp;
  }
  absl::StatusOr<pb::HeartbeatResponse> Heartbeat(const pb::HeartbeatRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    heartbeats.push_back(req);
    if (auto s = Pop(heartbeat_errors); !s.ok()) return s;
    pb::HeartbeatResponse resp;
    for (auto& c : commands) *resp.add_commands() = c;
    commands.clear();
    resp.set_lease_ttl_ms(lease_ttl_ms);
    return resp;
  }
  absl::StatusOr<pb::AcquireTrialResponse> AcquireTrial(
      const pb::AcquireTrialRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    acquires.push_back(req);
    if (auto s = Pop(acquire_errors); !s.ok()) return s;
    pb::AcquireTrialResponse resp;
    int want = req.max_trials() == 0 ? 1 : req.max_trials();
    while (!leases.empty() && resp.leases_size() < want) {
      *resp.add_leases() = leases.front();
      leases.pop_front();
    }
    return resp;
  }
  absl::StatusOr<pb::ReportMetricsResponse> ReportMetrics(
      const pb::ReportMetricsRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    if (auto s = Pop(metrics_errors); !s.ok()) return s;
    metrics.push_back(req);
    pb::ReportMetricsResponse resp;
    resp.set_accepted(req.points_size());
    return resp;
  }
  absl::Status ReportCheckpoint(const pb::ReportCheckpointRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    if (auto s = Pop(checkpoint_errors); !s.ok()) return s;
    checkpoints.push_back(req);
    return absl::OkStatus();
  }
  absl::Status CompleteTrial(const pb::CompleteTrialRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    if (auto s = Pop(complete_errors); !s.ok()) return s;
    completions.push_back(req);
    return absl::OkStatus();
  }

  absl::Status ReportLogs(const pb::ReportLogsRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    if (auto s = Pop(logs_errors); !s.ok()) return s;
    logs.push_back(req);
    return absl::OkStatus();
  }

  absl::Status ReportRendezvous(const pb::ReportRendezvousRequest& req) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = Validate(req); !s.ok()) return s;
    if (auto s = Pop(rendezvous_errors); !s.ok()) return s;
    rendezvous.push_back(req);
    return absl::OkStatus();
  }

  // Scripted inputs (set before the agent steps, or under the test's own sequencing).
  int64_t lease_ttl_ms = 3000;
  std::deque<pb::Lease> leases;
  std::vector<pb::WorkerCommand> commands;
  std::deque<absl::Status> register_errors, heartbeat_errors, acquire_errors, metrics_errors,
      checkpoint_errors, complete_errors, logs_errors, rendezvous_errors;
  // Recorded calls.
  std::vector<pb::RegisterWorkerRequest> registers;
  std::vector<pb::HeartbeatRequest> heartbeats;
  std::vector<pb::AcquireTrialRequest> acquires;
  std::vector<pb::ReportMetricsRequest> metrics;
  std::vector<pb::ReportCheckpointRequest> checkpoints;
  std::vector<pb::CompleteTrialRequest> completions;
  std::vector<pb::ReportLogsRequest> logs;
  std::vector<pb::ReportRendezvousRequest> rendezvous;

 // Requests the server's validation refused, with its error.
  std::vector<std::string> rejected;

 private:
  template <typename Request>
  absl::Status Validate(const Request& req) {
    absl::Status s = server::ValidateRequest(req);
    if (!s.ok()) rejected.push_back(absl::StrCat(req.GetTypeName(), ": ", s.message()));
    return s;
  }
  static absl::Status Pop(std::deque<absl::Status>& q) {
    if (q.empty()) return absl::OkStatus();
    absl::Status s = q.front();
    q.pop_front();
    return s;
  }
  std::mutex mu_;
};

}  // namespace wrpn::agent
