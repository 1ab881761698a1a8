#pragma once
// LibTorch modules for the WRPN networks: quantized conv/linear/activation layers and the
// network builders. Modules are not thread-safe (like every torch::nn::Module).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/statusor.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"

namespace wrpn::trainer {

// Precision of the quantized layers and the recipe's weight-scale rule.
struct Precision {
  int wbits = 32;
  int abits = 32;
  // 0: the adaptive per-layer scale (AdaptiveWeightScale); > 0: a fixed scale for every layer
  // (1.0 reproduces the literal paper quantizer, clip to [-1, 1]).
  double weight_scale = 0;
  // The quantizers (docs/recipe.md). LSQ layers hold a learned `step` per quantizer, PACT
  // activations a learned `alpha`; both are parameters (trained, checkpointed). LSQ steps start
  // at the paper's value on their first forward (weights: from the weights then, so an FP32
  // initialisation is used; activations: from the first batch); buffer `step_ready` records it.
  QuantScheme scheme = QuantScheme::kWrpn;
};

// PACT's initial clip value.
inline constexpr double kPactInitialAlpha = 10.0;

// A network: forward maps an NCHW batch to logits.
class Network : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
};

// Builds `network` at `width` for `input`, with the first and the last layer in FP32.
absl::StatusOr<std::shared_ptr<Network>> BuildNetwork(const std::string& network, double width,
                                                      const InputShape& input,
                                                      const Precision& precision);

// The weights each conv/linear layer uses in its forward pass (the quantized copies), by module
// name, in registration order: the hardware view of the network.
std::vector<std::pair<std::string, torch::Tensor>> QuantizedWeights(Network& net);

// Whether some LSQ step has not been initialised yet (it will be on its first forward).
bool QuantizerInitPending(Network& net);

// While alive on a thread, every conv/linear forward on that thread adds its FMAs per image to
// `fmas` (used to check the modules against common/network_spec).
class FmaCounter {
 public:
  FmaCounter();
  ~FmaCounter();
  int64_t fmas() const { return fmas_; }
  static void Add(int64_t n);

 private:
  int64_t fmas_ = 0;
  FmaCounter* previous_;
};

}  // namespace wrpn::trainer
