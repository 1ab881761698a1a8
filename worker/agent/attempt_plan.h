#pragma once
// The attempt planner: from a lease, the worker's options and its free GPUs, everything about
// how an attempt runs (ranks, GPUs, folders, the typed trial config each rank reads, the
// rendezvous, each rank's command line and environment), or why it cannot. Pure: no file, port
// or process is touched (paths are made absolute lexically). Stateless, thread-safe.
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "common/trainer_protocol.h"
#include "common/trial_config.h"
#include "worker/agent/agent_options.h"
#include "worker/agent/process_launcher.h"

namespace wrpn::agent {

struct AttemptPlan {
  int node_rank = 0;
  int nnodes = 1;
  int nproc = 1;  // ranks on this node
  int world_size = 1;
  bool gang = false;         // one node of a multi-node trial
  bool single_step = false;  // the whole gang as one Slurm step started here (srun_launcher.h)
  std::vector<int> gpus;     // indices into AgentOptions::gpus
  std::string dir;           // <work_dir>/attempts/t<T>-a<A>-n<node>
  std::string ckpt_dir;      // <checkpoint root>/trial-<T>/attempt-<A>[-node-<N>]
  std::string config_path;   // <dir>/trial.json
  // What trial.json holds: the lease's config with the worker's checkpoint folder, dataset path,
  // device and core share; `resume` turns true once resume_from is in place as last.pt.
  TrialConfig config;
  std::string resume_from;         // the lease's checkpoint when this worker may read it
  std::vector<std::string> notes;  // lines for the attempt's log
  std::string master_addr = "127.0.0.1";
  int master_port = 0;       // gang: the lease's (or the registered "host:port"); 0 = pick one
  bool hosts_store = false;  // node 0 of a gang: hosts the TCPStore and reports its port
};

// The plan, or the failure to report without starting anything (a config error, too few GPUs,
// a gang node without a rendezvous port).
[[nodiscard]] std::variant<AttemptPlan, FailedEvent> PlanAttempt(
    const pb::Lease& lease, const AgentOptions& options, const std::vector<int>& free_gpus);

// Processes to start: one for a single-step gang, else one per local rank.
int Launches(const AttemptPlan& plan);
// The process of local rank `local` once the master port is known.
ProcessSpec RankSpec(const AttemptPlan& plan, const pb::Lease& lease, const AgentOptions& options,
                     int local, int master_port);

// <work_dir>/checkpoints unless options.checkpoint_dir, absolute and normalised.
std::string CheckpointRoot(const AgentOptions& options);

// OK when `path`, made absolute and normalised (`..` resolved lexically), lies in one of
// `roots`; otherwise INVALID_ARGUMENT naming `field`, the path and the roots.
[[nodiscard]] absl::Status CheckPathUnderRoots(const std::string& field, const std::string& path,
                                               const std::vector<std::string>& roots);

// Splits "host:port" or "[v6]:port" into its parts; a bare host (or IPv6 address) is left whole
// and `port` unchanged.
void SplitHostPort(const std::string& addr, std::string* host, int* port);

}  // namespace wrpn::agent
