#pragma once
// The distributed environment of a wrpn-train started by `srun` as one task of a Slurm job step,
// in torchrun's terms (like torchrun's and Lightning's Slurm support): SLURM_PROCID -> RANK,
// SLURM_NTASKS -> WORLD_SIZE, SLURM_LOCALID -> LOCAL_RANK, this node's entry of
// SLURM_STEP_TASKS_PER_NODE -> LOCAL_WORLD_SIZE, the first host of SLURM_STEP_NODELIST (else
// SLURM_JOB_NODELIST, SLURM_NODELIST) -> MASTER_ADDR, and a port derived from SLURM_JOB_ID ->
// MASTER_PORT. A torchrun variable already set wins over Slurm's, and wrpn-train's flags win over
// both. It applies only to the step's task itself (SLURM_TASK_PID is this process): a wrpn-worker
// started by srun hands its own SLURM_* variables down to the trainers it forks, which are not
// tasks of that step. Pure functions plus one that reads and sets the process environment.
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace wrpn::trainer {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// "n[1-2],gpu05" -> "n1"; "node[007-009]" -> "node007"; INVALID_ARGUMENT naming `field` when
// the list is empty or a bracket is malformed.
[[nodiscard]] absl::StatusOr<std::string> FirstHost(const std::string& field,
                                                    const std::string& hostlist);

// Tasks on node `node_id` from Slurm's compressed per-node counts ("2(x3),1": nodes 0-2 run 2
// tasks, node 3 one).
[[nodiscard]] absl::StatusOr<int> TasksOnNode(const std::string& field,
                                              const std::string& tasks_per_node, int node_id);

// The torchrun variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR as the
// first node's name, MASTER_PORT) a task of a Slurm step should have; only those `env` does not
// set already. Empty when this is not a Slurm step's task (`pid` is not SLURM_TASK_PID, or no
// SLURM_PROCID); an error naming the variable when one is malformed.
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> SlurmTorchrunEnv(
    const EnvLookup& env, long pid);

// Sets SlurmTorchrunEnv's variables in this process's environment. MASTER_ADDR becomes the
// node's address from `scontrol show node` when its name does not resolve (Slurm nodes with
// NodeAddr, several slurmd on one host). Returns what it set (for the trainer's log line).
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ApplySlurmEnvironment();

}  // namespace wrpn::trainer
