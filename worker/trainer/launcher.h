#pragma once
// `wrpn-train train --nproc N`: starts N local ranks of this binary (like torchrun
// --nproc-per-node N), relays rank 0's events, and if one rank fails stops the others (SIGTERM,
// then SIGKILL after a grace period) and reports the failing rank. No LibTorch here.
#include <string>
#include <vector>

namespace wrpn::trainer {

struct LaunchOptions {
  int nproc = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: pick a free port (single node only)
  double grace_seconds = 10;
  std::string executable;               // the binary to start for each rank
  std::vector<std::string> rank_args;   // its arguments (without the launcher's own flags)
};

// Runs the ranks to completion and returns the exit code for the launcher process.
int LaunchLocalRanks(const LaunchOptions& options);

// A TCP port that was free on 127.0.0.1 a moment ago.
int PickFreePort();

}  // namespace wrpn::trainer
