#pragma once
// How `wrpn worker list` and `wrpn trial show` spell GPU shares. Pure functions; thread-safe.
#include <string>

#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::client {

// Each GPU's share in use and its trials: "0:0.75(3,4,5) 1:0"; "-" for a worker without GPUs.
std::string GpuSharesCell(const ::wrpn::v1::Worker& w);
// A trial's resources: "CPU, 1 node", "0.25 GPU (2 GiB)", "8 GPUs per node x 2 nodes".
std::string TrialResources(const ::wrpn::v1::Trial& t);

}  // namespace wrpn::client
