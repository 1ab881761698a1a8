#pragma once
// Chaos test harness: a real `wrpn-coordinator` process (SQLite file, gRPC + HTTP on free ports,
// token auth), real `wrpn-worker` processes running the fake trainer (tests/chaos/fake_trainer.cc),
// a gRPC client with the admin token, and checks on the database file itself. The fixture owns
// every process it starts and the fake trainers they start (found through WRPN_FAKE_PID_DIR) and
// kills whatever is left at the end. Not thread-safe: one test thread drives it.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include "nlohmann/json.hpp"
#include "worker/agent/process_launcher.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::chaos {

namespace pb = ::wrpn::v1;
using json = nlohmann::json;

std::string ReadFile(const std::string& path);
// Live (non-zombie) children of `parent`, from /proc.
std::vector<pid_t> ChildrenOf(pid_t parent);
bool Alive(pid_t pid);
int FreePort();
// Polls `done` every `every` until it is true or `limit` passed; returns its last value.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit,
               std::chrono::milliseconds every = std::chrono::milliseconds(50));
// Runs a shell command; returns its exit status (0 = ok) and, if `out`, its stdout.
int Shell(const std::string& cmd, std::string* out = nullptr);

// What the database file itself says, read with a separate SQLite connection.
struct DbCheck {
  std::string integrity;  // PRAGMA integrity_check: "ok"
  // Human-readable violations of: a RUNNING attempt is the last attempt of a RUNNING trial (the
  // coordinator turns exactly those into live leases when it loads); a RUNNING trial has one;
  // no trial has more than one SUCCEEDED attempt or more than one terminal event.
  std::vector<std::string> violations;
  int64_t trials = 0, terminal_trials = 0, running_attempts = 0, metric_rows = 0;
  int64_t duplicate_points = 0;  // metric rows repeating a (trial, attempt, name, step)
};
DbCheck CheckDatabase(const std::string& db_path);
// Rows of `metrics` for (trial, attempt); -1 on error.
int64_t CountMetricRows(const std::string& db_path, int64_t trial, int attempt);
// The first column of the first row of `sql` on the database file, as a number; -1 on error.
int64_t QueryCount(const std::string& db_path, const std::string& sql);

class ChaosTest : public testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  struct CoordinatorFlags {
    std::string listen_host = "127.0.0.1";
    double lease_ttl_s = 2;
    std::string db_path;  // "" = <dir>/wrpn.db
  };
  // Starts wrpn-coordinator (same ports and db on every restart) and waits until it answers.
  void StartCoordinator(const CoordinatorFlags& flags);
  void StartCoordinator() { StartCoordinator(coordinator_flags_); }
  static CoordinatorFlags Flags(double lease_ttl_s, std::string listen_host = "127.0.0.1",
                                std::string db_path = "") {
    CoordinatorFlags f;
    f.lease_ttl_s = lease_ttl_s;
    f.listen_host = std::move(listen_host);
    f.db_path = std::move(db_path);
    return f;
  }
  // SIGKILL; waits for the exit.
  void KillCoordinator();
  // Waits up to `limit` for the coordinator to exit on its own (e.g. at its crash point), draining
  // worker output; its exit status, or nullopt if it still runs.
  std::optional<agent::ExitStatus> WaitCoordinatorExit(std::chrono::milliseconds limit);
  bool CoordinatorAlive();
  std::string coordinator_target() const;  // host:port the workers dial

  // Starts a wrpn-worker running the fake trainer. `env` sets trainer knobs (inherited);
  // `extra` flags replace defaults of the same name or are appended; `prefix` runs it under
  // another program (e.g. {"ip", "netns", "exec", ns}).
  agent::Process* StartWorker(const std::string& name, std::map<std::string, std::string> env = {},
                              std::vector<std::string> extra = {},
                              std::vector<std::string> prefix = {},
                              const std::string& coordinator = "");
  // Stops tracking `name` as a worker expected to stay alive (the test killed it).
  void Stopped(const std::string& name) { stopped_.insert(name); }

  // Sweep of the fake trainer: lenet5 x widths x precisions, `epochs` epochs, CPU trials.
  json SweepSpec(const std::string& name, std::vector<double> widths,
                 std::vector<std::string> precisions, int epochs, int max_attempts = 3,
                 json resources = {{"gpus_per_node", 0}, {"nodes", 1}}) const;
  absl::StatusOr<int64_t> Submit(const json& spec);
  // RPC helpers (admin token, 2 s deadline).
  absl::StatusOr<pb::Sweep> GetSweep(int64_t id);
  absl::StatusOr<std::vector<pb::Trial>> ListTrials(int64_t sweep,
                                                   pb::TrialState state = pb::TRIAL_STATE_UNSPECIFIED);
  absl::StatusOr<pb::GetTrialResponse> GetTrial(int64_t id);
  absl::StatusOr<pb::GetGridResponse> GetGrid(int64_t sweep);
  absl::StatusOr<pb::GetTrialMetricsResponse> GetTrialMetrics(int64_t trial);
  bool SweepFinished(int64_t id);
  // Waits for the sweep to finish, draining worker output and failing if a worker the test did
  // not stop exits.
  bool WaitForSweep(int64_t id, std::chrono::seconds limit);
  // Polls `done`, draining worker output, failing early when an unexpected worker exit happens.
  bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit);
  // The coordinator's /metrics text ("" when unreachable).
  std::string HttpMetrics();

  // Live fake trainers (pid -> "trial attempt rank") started so far.
  std::map<pid_t, std::string> Trainers();
  // Cell by cell: network, width, bits, state, final/best top-1 and top-5 equal.
  static void ExpectSameGrid(const pb::GetGridResponse& a, const pb::GetGridResponse& b);
  // Every trial succeeded with exactly one succeeded attempt and none is left RUNNING; the db
  // passes CheckDatabase and holds no metric point twice.
  void ExpectEachTrialEndedOnce(int64_t sweep);

  std::string dir_;
  std::string db_path_;
  std::string coordinator_bin_, worker_bin_, trainer_bin_;
  int grpc_port_ = 0, http_port_ = 0;
  CoordinatorFlags coordinator_flags_;
  // WRPN_CRASH_AT for the coordinators StartCoordinator starts ("" = none): it SIGKILLs itself at
  // that point (common/crash_point.h).
  std::string crash_at_;
  agent::ForkExecLauncher launcher_;
  std::unique_ptr<agent::Process> coordinator_;
  std::string coordinator_log_;  // stderr of earlier coordinator processes
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  std::map<std::string, std::unique_ptr<agent::Process>> workers_;
  std::set<std::string> stopped_;
};

}  // namespace wrpn::chaos
