#pragma once
// Worker labels (RegisterWorkerRequest.labels) that mean something to the coordinator.

namespace wrpn {

// "N" (N >= 2): the worker runs inside a Slurm allocation of N nodes and starts a gang trial of
// up to N nodes alone, as one `srun` step (Rendezvous.single_step); wrpn-worker
// --slurm-step-nodes sets it.
inline constexpr char kSlurmStepNodesLabel[] = "slurm.step_nodes";

}  // namespace wrpn
