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

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/trainer_protocol.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/gpu_slots.h"
#include "worker/agent/process_launcher.h"
#include "worker/agent/trial_env.h"

namespace wrpn::agent {

struct AgentOptions {
  std::string name;            // shown in `wrpn workers`
  std::string address;         // host the worker's gang peers can reach (rank 0's TCPStore)
  std::vector<pb::Gpu> gpus;   // empty on CPU machines
  int cpus = 1;
  std::map<std::string, std::string> labels;
  int max_cpu_trials = 1;      // concurrent 0-GPU trials
  int cpu_ranks = 1;           // trainer processes per 0-GPU trial on this node
  std::string trainer;         // path of wrpn-train
  std::string work_dir;        // attempt folders: <work_dir>/attempts/t<T>-a<A>-n<node>
  std::string checkpoint_dir;  // "" = <work_dir>/checkpoints; shared storage for multi-machine
  // Datasets root: a trial whose dataset.path is empty gets <data_dir>/<kind> (fashion_mnist ->
  // fashion-mnist), a relative dataset.path is taken under it. Default: where Debian's dataset
  // packages install.
  std::string data_dir = "/usr/share/datasets";
  // Folders besides data_dir a trial's dataset.path may name (--allow-data-root). A dataset path
  // outside data_dir and all of them (absolute, or climbing out with `..`) fails the trial as a
  // config error; with no folder at all (data_dir "" and no roots), every dataset path does.
  // Confinement is off only when a root is "/".
  std::vector<std::string> allowed_data_roots;
  // Port this worker's rank-0 trainers host the TCPStore on in multi-node trials; registered as
  // part of the address ("host:port") so every peer learns it. 0 = the coordinator's choice.
  int rendezvous_port = 0;
  // Seconds the ranks of a multi-rank trial wait for each other (wrpn-train
  // --rendezvous-timeout); 0 = the trainer's default.
  double rendezvous_timeout_s = 0;
  std::chrono::milliseconds grace{30000};            // SIGTERM -> SIGKILL
  std::chrono::milliseconds metrics_interval{5000};  // batch metric points this long at most
  std::chrono::milliseconds acquire_interval{1000};  // ask for work at most this often
  std::chrono::milliseconds register_retry{2000};
  // A trial whose trainers print nothing (stdout or stderr, any rank) for this long is taken as
  // hung: SIGTERM, SIGKILL after `grace`, reported as an internal failure (retried). 0 = off.
  std::chrono::milliseconds stall_timeout{0};
  std::chrono::hours retention{24 * 7};  // attempt folders and stale checkpoints older than this go
  size_t log_tail_bytes = 64 * 1024;     // stderr kept per rank and attempt
  bool keep_checkpoints = false;         // keep a trial's checkpoints after it succeeded
  MpsDirs mps;  // GPU trials run as clients of this MPS daemon (--mps); empty = no MPS
};

// OK when `path`, made absolute and normalised (`..` resolved lexically), lies in one of
// `roots`; otherwise INVALID_ARGUMENT naming `field`, the path and the roots.
[[nodiscard]] absl::Status CheckPathUnderRoots(const std::string& field, const std::string& path,
                                               const std::vector<std::string>& roots);

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
  enum class StopKind { kNone, kCancel, kForget, kLeaseLost, kDrain, kPeerFailed, kStalled };
  struct RunState;
  struct EventHandler;

  void Register();
  void LogThrottled(const std::string& msg);  // the same message at most every 10 s
  void Heartbeat();
  void Acquire();
  void Start(const pb::Lease& lease);
  void Poll(RunState& r);
  void HandleEvent(RunState& r, int local_rank, const std::string& line);
  void Finish(RunState& r);
  void RequestStop(RunState& r, StopKind kind, const std::string& reason);
  void Note(RunState& r, const std::string& text);
  void QueueLog(RunState& r, int rank, std::string line);
  void FlushLogs(RunState& r, bool force);
  void FlushMetrics(RunState& r, bool force);
  void FlushCheckpoint(RunState& r);
  void TryComplete(RunState& r);
  void WriteLogs(RunState& r);
  void Fail(RunState& r, FailureKind kind, const std::string& reason);
  void Forget(RunState& r, const std::string& why);
  int FreeGpus() const;
  int FreeCpuSlots() const;
  pb::LeaseRef Ref(const RunState& r) const;

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
  bool logs_supported_ = true;
  bool heartbeat_failing_ = false;  // false after the coordinator answered ReportLogs UNIMPLEMENTED
};

// Splits "host:port" or "[v6]:port" into its parts; a bare host (or IPv6 address) is left whole
// and `port` unchanged.
void SplitHostPort(const std::string& addr, std::string* host, int* port);

// Short human form of a lease for logs: "trial 7 attempt 2 (lease l-12-0)".
std::string DescribeLease(const pb::Lease& lease);

}  // namespace wrpn::agent
