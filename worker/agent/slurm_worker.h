#pragma once
// What a wrpn-worker started inside a Slurm job registers with (wrpn-worker --slurm), read from
// the job's environment: the name "slurm-<job>[_<array task>]-<node>", CPUs from
// SLURM_CPUS_ON_NODE, GPUs from the CUDA_VISIBLE_DEVICES Slurm's GRES set, labels slurm.job_id
// and slurm.node, and with --slurm-step-nodes the label that lets the coordinator hand this worker
// whole gangs (common/worker_labels.h). Pure functions; thread-safe.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/agent/coordinator_client.h"

namespace wrpn::agent {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

struct SlurmJob {
  std::string job_id;         // SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID for an array task
  std::string allocation_id;  // SLURM_JOB_ID (what srun, squeue and scancel take)
  std::string node;           // SLURMD_NODENAME
  int cpus_on_node = 0;       // 0 = not given
  int num_nodes = 1;          // SLURM_JOB_NUM_NODES
  std::optional<std::vector<int>> gpu_indices;  // from CUDA_VISIBLE_DEVICES when numeric
};

// FAILED_PRECONDITION when not inside a Slurm job (no SLURM_JOB_ID); INVALID_ARGUMENT naming
// the variable when one is malformed.
[[nodiscard]] absl::StatusOr<SlurmJob> ReadSlurmJob(const EnvLookup& env);

std::string SlurmWorkerName(const SlurmJob& job);

// The GPUs to advertise: those of `detected` whose index Slurm gave the job (all of them when
// it gave none); indices nvidia-smi did not list are added as plain entries.
std::vector<pb::Gpu> SlurmGpus(const SlurmJob& job, const std::vector<pb::Gpu>& detected);

// The process environment as an EnvLookup.
EnvLookup ProcessEnv();

}  // namespace wrpn::agent
