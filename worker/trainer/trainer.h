#pragma once
// Runs one WRPN trial: data, network, optimizer, schedule, evaluation, checkpoints, and the
// JSON-lines event stream. The only entry point into LibTorch for the binaries; it catches every
// LibTorch exception and turns it into an exit code and a "failed" event.
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/trainer_protocol.h"  // exit codes, failure kinds, events
#include "common/trial_config.h"
#include "worker/trainer/communicator.h"

namespace wrpn::trainer {

// Receives events (common/trainer_protocol.h, as JSON); called from the training thread only.
using EventSink = std::function<void(const nlohmann::json&)>;

struct RunOptions {
  // Polled between steps; when it becomes true the trial checkpoints and stops.
  const std::atomic<bool>* stop = nullptr;
  // world_size > 1: data-parallel over c10d (Gloo on CPU, NCCL on CUDA). Only rank 0 emits
  // events other than "failed" and writes checkpoints.
  DistributedOptions distributed;
  // On CUDA, cap the caching allocator of this process at this many bytes of the GPU (LibTorch's
  // per-process memory fraction); an allocation past it fails the trial as `resources`. nullopt:
  // WRPN_GPU_MEMORY_BYTES from the environment (set by the worker from the trial's
  // gpu_memory_gb); 0 = no cap. Ignored on the CPU.
  std::optional<int64_t> gpu_memory_bytes;
};

// Whether `e` is LibTorch's out-of-memory error (c10::OutOfMemoryError, or a c10::Error saying
// "CUDA out of memory"): the trial fails with FailureKind::kResources and kExitResources.
bool IsOutOfMemory(const std::exception& e);

// Trains `config` to the end (or until stopped) and returns the exit code.
int RunTrial(const TrialConfig& config, const EventSink& sink, const RunOptions& options = {});

// Path of the rolling checkpoint inside a checkpoint directory.
std::string CheckpointPath(const std::string& checkpoint_dir);

// Reads the FP32 master weights (and buffers) of a checkpoint, by parameter name, for tests and
// tools. Throws on unreadable files.
std::vector<std::pair<std::string, std::vector<float>>> ReadCheckpointWeights(
    const std::string& path);

}  // namespace wrpn::trainer
