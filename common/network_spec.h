#pragma once
// Pure description of the WRPN networks (layer shapes and the forward pass's ops, no tensors)
// and the compute-cost model built on it (the memory model is common/memory_model.h). Shared by the trainer, the coordinator and the CLI so all
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

// One op of the forward pass as LibTorch runs it (worker/trainer/networks.cc), with the map it
// produces: what the memory model (common/memory_model.h) counts. Flatten is a view, not an op.
enum class OpKind { kInput, kConv, kLinear, kBatchNorm, kActivation, kMaxPool, kAvgPool, kAdd, kConcat };
struct OpSpec {
  OpKind kind = OpKind::kInput;
  std::string name;
  std::vector<int> inputs;  // indices into NetworkSpec::ops of the maps it reads
  int channels = 0, height = 1, width = 1;  // its output map
  int layer = -1;           // kConv/kLinear: index into NetworkSpec::layers
  // kActivation: the trial's activation quantizer when true (at abits), a plain ReLU when false.
  bool quantized = false;
  int64_t OutputElements() const { return int64_t{channels} * height * width; }
};

struct NetworkSpec {
  std::string network;
  double width = 1.0;
  InputShape input;
  std::vector<LayerSpec> layers;
  // Batch-norm layers' affine parameters (2 per channel) counted separately from conv/linear.
  int64_t norm_params = 0;
  // Every op in forward order; ops[0] is the network input.
  std::vector<OpSpec> ops;

  int64_t ParamCount() const;   // conv + linear + norm parameters
  int64_t WeightCount() const;  // conv + linear weights only
  int64_t Fmas() const;         // per image
};

// Names accepted everywhere: lenet5, resnet20, resnet18, resnet34, resnet50, alexnet, inception_bn.
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

}  // namespace wrpn
