#pragma once
// Agent: the worker's control loop. Registers with the coordinator, acquires trials while it has
// free slots, launches each as wrpn-train processes (one per GPU, or `cpu_ranks` CPU ranks),
// relays their JSON-lines events as metrics, checkpoints and the final outcome, heartbeats its
// leases, obeys CANCEL_TRIAL / FORGET_LEASE / DRAIN, and stops trainers with SIGTERM, then SIGKILL
// after a grace period. Owns the runs and their processes; borrows the client, launcher and clock.
// Not thread-safe: one thread calls Step (Run does so in a loop); Drain may be requested from a
// signal handler through RequestDrain.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/trainer_protocol.h"
#include "worker/agent/agent_options.h"
#include "worker/agent/attempt_outcome.h"
#include "worker/agent/attempt_plan.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

struct AttemptRun;  // attempt_run.h

class Agent {
 public:
  Agent(CoordinatorClient* client, ProcessLauncher* launcher, const Clock* clock,
        AgentOptions options);
  ~Agent();

  // One non-blocking pass: register when needed, read trainer output and exits, escalate
  // overdue SIGTERMs, heartbeat when due, flush metrics when due, retry pending reports, and
  // acquire trials when slots are free.
  void Step();
  // Stop acquiring, SIGTERM every running trainer (they checkpoint) and report each attempt as
  // interrupted so the trial resumes elsewhere. Safe to call from a signal handler.
  void RequestDrain() { drain_requested_.store(true); }
  // Steps every `poll` until `stop` is set; then drains and steps until every run is reported
  // or the grace period (plus `poll` x 20 for the reports) has passed. Sleeps on the real clock.
  void Run(const std::atomic<bool>& stop, std::chrono::milliseconds poll);

  bool registered() const { return !worker_id_.empty(); }
  const std::string& worker_id() const { return worker_id_; }
  bool draining() const { return draining_; }
  // Runs not yet reported (running, stopping, or waiting to report).
  size_t active_runs() const { return runs_.size(); }
  // Removes attempt folders and checkpoints older than the retention; returns how many.
  int CleanUp();

 private:
  using Steady = std::chrono::steady_clock::time_point;
  using RunState = AttemptRun;

  void Register();
  void LogThrottled(const std::string& msg);  // the same message at most every 10 s
  void Heartbeat();
  void Obey(const pb::WorkerCommand& command);
  bool ForgotUs(const char* what, const absl::Status& s);
  void Acquire();
  void Start(const pb::Lease& lease);
  bool PrepareFolders(RunState& r);
  std::optional<int> MasterPort(RunState& r);
  void Launch(RunState& r, int master_port);
  void Poll(RunState& r);
  void HandleEvent(RunState& r, int local_rank, const std::string& line);
  void Finish(RunState& r);
  void Report(RunState& r, const Outcome& outcome);
  void RequestStop(RunState& r, StopKind kind, const std::string& reason);
  // The coordinator no longer takes reports for the lease: stop the ranks still running, or
  // drop the attempt when none is.
  void LeaseRefused(RunState& r, StopKind kind, const std::string& why);
  void Note(RunState& r, const std::string& text);
  void QueueLog(RunState& r, int rank, std::string line);
  void FlushLogs(RunState& r, bool force);
  void FlushMetrics(RunState& r, bool force);
  void FlushCheckpoint(RunState& r);
  void TryComplete(RunState& r);
  void WriteLogs(RunState& r);
  void Fail(RunState& r, FailureKind kind, const std::string& reason);
  void Forget(RunState& r, const std::string& why);
  // A trainer could not be started (FailureKind::kLaunch): no trials for kLaunchPause, doubled
  // with each failure in a row up to kLaunchPauseMax, and after that only once the launcher can
  // execute the trainer. A successful launch ends the pause.
  void PauseLaunches(const std::string& why);
  bool LaunchesAllowed();
  int FreeGpus() const;
  int FreeCpuSlots() const;

  CoordinatorClient* const client_;
  ProcessLauncher* const launcher_;
  const Clock* const clock_;
  const AgentOptions options_;
  std::string checkpoint_root_;

  std::string worker_id_;
  std::chrono::milliseconds heartbeat_interval_{10000};
  std::optional<Steady> next_register_, next_heartbeat_, next_acquire_, next_cleanup_;
  bool draining_ = false;
  std::atomic<bool> drain_requested_{false};
  bool drain_applied_ = false;
  std::vector<std::unique_ptr<RunState>> runs_;
  GpuSlots gpu_slots_{0};  // share of each GPU the runs hold
  std::map<std::string, Steady> last_logged_;
  bool logs_supported_ = true;  // false after the coordinator answered ReportLogs UNIMPLEMENTED
  bool heartbeat_failing_ = false;
  static constexpr std::chrono::milliseconds kLaunchPause{10000};
  static constexpr std::chrono::milliseconds kLaunchPauseMax{300000};
  int launch_failures_ = 0;  // in a row
  std::optional<Steady> launch_paused_until_;
};

// Short human form of a lease for logs: "trial 7 attempt 2 (lease l-12-0)".
std::string DescribeLease(const pb::Lease& lease);

}  // namespace wrpn::agent
