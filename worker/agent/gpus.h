#pragma once
// GPU discovery without linking CUDA: asks nvidia-smi. Stateless; thread-safe.
#include <string>
#include <vector>

#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::agent {

// Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` output
// ("0, NVIDIA H100 80GB HBM3, 81559" per line, memory in MiB). Lines that do not parse are skipped.
std::vector<::wrpn::v1::Gpu> ParseNvidiaSmi(const std::string& csv);

// Runs nvidia-smi; no GPUs when it is missing or fails.
std::vector<::wrpn::v1::Gpu> DetectGpus();

}  // namespace wrpn::agent
