#pragma once
// What each trainer process of a trial gets from its worker besides the trial config: the
// environment naming its GPUs, its share of them and its GPU memory cap (common/gpu_share.h), MPS
// settings when the worker runs trials under NVIDIA MPS (--mps), and its share of the worker's
// cores (intra-op and loader threads). Pure functions (but for the MPS daemon's start and stop);
// thread-safe.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace wrpn::agent {

// Where NVIDIA MPS clients find the worker's MPS control daemon (empty: no MPS).
struct MpsDirs {
  std::string pipe_dir;
  std::string log_dir;
  bool enabled() const { return !pipe_dir.empty(); }
};

struct TrialPlacement {
  std::vector<int> device_indices;  // CUDA indices (pb::Gpu.index) of the trial's GPUs; empty = CPU
  double gpu_share = 0;             // > 0: a fraction of device_indices[0]; 0 = whole GPUs
  int64_t gpu_memory_bytes = 0;     // the trial's cap; 0 = none
  MpsDirs mps;
};

// CUDA_VISIBLE_DEVICES (empty for a CPU trial, so the trainer sees no GPU), WRPN_GPU_SHARE (GPU
// trials: "0.25", "1" for whole GPUs), WRPN_GPU_MEMORY_BYTES (when capped) and, under MPS,
// CUDA_MPS_PIPE_DIRECTORY, CUDA_MPS_LOG_DIRECTORY and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (the
// share of the GPU's SMs, for fractions).
std::map<std::string, std::string> TrialEnvironment(const TrialPlacement& p);

// Cores for each rank of a trial: the worker's `cpus` times the trial's share of what the worker
// runs at once (GPU trials: its GPUs, or its fraction of one, over the worker's GPUs; CPU trials:
// one of `max_cpu_trials` slots), split among its `ranks`; at least 1.
int RankCores(int cpus, int worker_gpus, double trial_gpus, int max_cpu_trials, int ranks);

// nvidia-cuda-mps-control on PATH, or "" when it is not installed.
std::string FindMpsControl();
// Starts the MPS control daemon (`control -d`) with its pipe and log folders under `root`
// (created); the error names the command and its exit status.
absl::StatusOr<MpsDirs> StartMpsDaemon(const std::string& control, const std::string& root);
// Asks the daemon to quit (`echo quit | control`).
void StopMpsDaemon(const std::string& control, const MpsDirs& dirs);

}  // namespace wrpn::agent
