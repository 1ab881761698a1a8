#pragma once
// Fractional GPUs: how a trial's share of one GPU is spelled in a sweep spec, counted by the
// scheduler and handed to the trainer. A share is a fraction 1/k of one GPU (k = 2..16) or whole
// GPUs; the scheduler counts shares in integer units (kGpuShareUnits = one GPU, divisible by every
// k <= 16) so that sixteen 1/16 trials fill a GPU exactly. Plain values and pure functions;
// thread-safe.
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace wrpn {

inline constexpr int kMaxGpuShareDenominator = 16;
// lcm(1..16): every share 1/k, k <= 16, is a whole number of units.
inline constexpr int64_t kGpuShareUnits = 720720;
inline constexpr double kMaxGpuMemoryGb = 4096;

// Environment the worker agent gives each trainer (worker/agent/trial_env.h) and the trainer reads.
inline constexpr char kGpuShareEnv[] = "WRPN_GPU_SHARE";              // "0.25"; "1" for whole GPUs
inline constexpr char kGpuMemoryBytesEnv[] = "WRPN_GPU_MEMORY_BYTES";  // the trial's cap; unset = none

// A trial's GPU demand per node as the spec gives it.
struct GpuAmount {
  int whole = 0;        // whole GPUs per node (0 with a fraction or for a CPU trial)
  int denominator = 0;  // k > 1: the trial takes 1/k of one GPU; 0 = whole GPUs
  bool fractional() const { return denominator > 1; }
  double gpus() const { return fractional() ? 1.0 / denominator : whole; }
  // Scheduler units of one GPU it takes (fractions only; 0 for whole GPUs).
  int64_t share_units() const { return fractional() ? kGpuShareUnits / denominator : 0; }
};

// Reads a `gpus_per_node` value: a whole number 0..64, a fraction 1/k of one GPU (k = 2..16) as
// a number (0.25, 0.333) or as the string "1/4". Anything else names `field` and lists the
// fractions allowed, e.g. `resources.gpus_per_node: 0.3 is neither a whole number of GPUs nor a
// fraction 1/k of one (allowed: 0.5, 0.333, 0.25, ... 0.0625 = 1/2 .. 1/16)`.
absl::StatusOr<GpuAmount> ParseGpuAmount(const nlohmann::json& v, const std::string& field);
// k when `share` is within 1% of 1/k (k = 2..16); 0 otherwise.
int ShareDenominatorOf(double share);
// The share of a fractional amount as a number ("gpu_share" in the canonical spec form).
double ShareOf(int64_t share_units);
// Share units of `share` (a fraction 1/k, k = 2..16); 0 when it is not one.
int64_t ShareUnitsOf(double share);
// "0.25", "0.333", "1".
std::string FormatShare(double share);

}  // namespace wrpn
