#pragma once
// Measures the peak memory of one training step (forward, loss, backward, SGD step, as the
// trainer runs it) and prints it next to the memory models of common/memory_model.h:
// `wrpn-train describe --measure`. On the CPU, LibTorch's allocator does not cache, so the peak of
// live tensor bytes comes from a counting allocator installed as LibTorch's CPU allocator (exact),
// and the peak resident set (VmHWM after clear_refs) shows what glibc's malloc cache, oneDNN's
// scratchpads and the BLAS buffers add on top. On CUDA the caching allocator's own statistics give
// both: allocated (live tensors) and reserved (held by the cache). Call from one thread.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/network_spec.h"

namespace wrpn::trainer {

struct MeasureOptions {
  std::string network;
  double width = 1.0;
  int wbits = 32, abits = 32;
  InputShape input;
  std::string device = "cpu";  // cpu | cuda | cuda:N
};

struct MeasuredStep {
  int batch = 0;
  std::string device;
  // Peak bytes of live tensors during the measured step, counted from before the network was
  // built (so parameters, gradients, optimizer buffers and the batch are included).
  double tensor_peak_bytes = 0;
  double tensor_before_step_bytes = 0;  // live at the start of the step (weights, state, batch)
  // CPU: peak resident set minus the resident set before the network was built. CUDA: the peak
  // the caching allocator reserved (live tensors plus its cache).
  double held_peak_bytes = 0;
};

// Builds the network, takes one warm-up step (so the gradients and momentum buffers exist, as in
// every step but the first) and measures the second.
absl::StatusOr<MeasuredStep> MeasureTrainingStep(const MeasureOptions& options, int batch);

// `wrpn-train describe --measure`: for each batch, the paper's and the autograd model next to the
// measurement, as a table or JSON. Returns the exit code.
int DescribeMeasured(const MeasureOptions& options, const std::vector<int>& batches, bool json);

}  // namespace wrpn::trainer
