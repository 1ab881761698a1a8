#pragma once
// `wrpn footprint`: training memory by batch size from the models of common/memory_model.h (the
// paper's accounting and the autograd one, at the trial's bits and as today's trainer stores it),
// optionally next to measured peaks (`wrpn-train describe --measure --json` output) and drawn in
// the paper's Figure 1 layout. Local; no coordinator. Not thread-safe (writes to the Invocation).
#include <string>
#include <vector>

#include "client/context.h"
#include "common/network_spec.h"

namespace wrpn::client {

struct FootprintArgs {
  std::string network;
  double width = 1;
  int wbits = 32, abits = 32;
  std::vector<int> batches;   // empty: the measured batches, else 1,32,64,128,256
  std::string plot_out;       // .png or .svg, empty: no plot
  std::string measured_path;  // JSON from wrpn-train describe --measure --json, empty: none
};

// `input` is the network's input (validated by the caller with the other model arguments).
// Throws CliError on bad arguments or an unreadable or mismatched measurement file.
int RunFootprint(Invocation& inv, const FootprintArgs& args, const InputShape& input);

}  // namespace wrpn::client
