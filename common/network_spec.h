#pragma once
// Pure description of the WRPN networks (layer shapes, no tensors) and the compute-cost and
// memory-footprint models built on it. Shared by the trainer, the coordinator and the CLI so all
// three agree on what a network at a given width is. Stateless functions; thread-safe.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace wrpn {

// Bits are valid when 1 <= k <= 16 or k == 32 (32 means "not quantized").
inline bool IsValidBits(int k) { return (k >= 1 && k <= 16) || k == 32; }

struct InputShape {
  int channels = 1;
  int height = 28;
  int width = 28;
  int classes = 10;
};

enum class LayerKind { kConv, kLinear };

// One conv or linear layer (the only layers with FMAs and weights that WRPN quantizes).
struct LayerSpec {
  std::string name;
  LayerKind kind = LayerKind::kConv;
  int in_channels = 0;
  int out_channels = 0;
  int kernel_h = 1;
  int kernel_w = 1;
  int stride = 1;
  int in_h = 1, in_w = 1;    // spatial size of the input map (1x1 for linear layers)
  int out_h = 1, out_w = 1;  // spatial size of the output map
  bool has_bias = false;
  // False for the first and the last layer: they keep FP32 weights and FP32 activations.
  bool quantized = true;
  // Bits the layer's input activation is stored at is the trial's abits when true, FP32 when
  // false (the network input, the activation leaving the first layer, the one feeding the last).
  bool input_quantized = true;
  // True when this layer reads the same map as an earlier layer (inception branches, residual
  // projections), so the memory model counts that map once.
  bool input_shared = false;

  int64_t InputElements() const { return int64_t{in_channels} * in_h * in_w; }
  int64_t OutputElements() const { return int64_t{out_channels} * out_h * out_w; }

  int64_t WeightCount() const;
  int64_t ParamCount() const { return WeightCount() + (has_bias ? out_channels : 0); }
  int64_t Fmas() const;  // per image
};

struct NetworkSpec {
  std::string network;
  double width = 1.0;
  InputShape input;
  std::vector<LayerSpec> layers;
  // Batch-norm layers' affine parameters (2 per channel) counted separately from conv/linear.
  int64_t norm_params = 0;

  int64_t ParamCount() const;   // conv + linear + norm parameters
  int64_t WeightCount() const;  // conv + linear weights only
  int64_t Fmas() const;         // per image
};

// Names accepted everywhere: lenet5, resnet20, resnet18, resnet34, alexnet, inception_bn.
const std::vector<std::string>& KnownNetworks();
bool IsKnownNetwork(std::string_view network);
// The input a network is meant for: 1x28x28/10 classes for lenet5 and resnet20,
// 3x224x224/1000 classes for the ImageNet networks.
InputShape DefaultInput(std::string_view network);
// Channels of a layer whose 1x width has `base` filter maps: round(base * width), at least 1.
int ScaledChannels(int base, double width);

absl::StatusOr<NetworkSpec> DescribeNetwork(std::string_view network, double width,
                                            const InputShape& input);

// Compute cost = sum over layers of FMA x (weight bits + activation bits), relative to the same
// network at 1x width and 32/32 bits. Two figures:
//   uniform:              every layer at the trial's bits (the paper's AlexNet Table 3 rule);
//   first_last_fp32:      first and last layer at 32/32, the rest at the trial's bits.
struct CostReport {
  int64_t fmas = 0;           // per image, at the trial's width
  int64_t baseline_fmas = 0;  // per image, same network at 1x
  double fma_ratio = 0;       // fmas / baseline_fmas
  double cost_uniform = 0;
  double cost_first_last_fp32 = 0;
};
absl::StatusOr<CostReport> ComputeCost(std::string_view network, double width, int wbits,
                                       int abits, const InputShape& input);

// Memory footprint model of the paper's section 2, in bytes.
//   training  = all activation maps (every conv/linear layer's input and output map) + weights + largest input-gradient map + largest
//               back-propagated gradient map;
//   inference = largest input map + largest output map of any layer + weights.
// Activations are stored at `abits`, weights at `wbits`; gradient maps stay FP32.
struct FootprintReport {
  int batch = 1;
  double activation_bytes = 0;
  double weight_bytes = 0;
  double gradient_bytes = 0;
  double training_bytes = 0;
  double inference_bytes = 0;
  double activation_fraction = 0;  // activation_bytes / training_bytes
};
FootprintReport ComputeFootprint(const NetworkSpec& spec, int wbits, int abits, int batch);

}  // namespace wrpn
