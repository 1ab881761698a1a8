#pragma once
// Training-memory models of a network description (common/network_spec.h), in bytes, in two
// accountings (docs/recipe.md, "Memory"):
//   paper:    the paper's section 2 read as it is written: every conv/linear layer's input and
//             output map + weights + the largest input-gradient map + the largest back-propagated
//             gradient map (ComputeFootprint);
//   autograd: what LibTorch's autograd really keeps during one training step of our trainer, op by
//             op (SavedForBackward), plus the FP32 master weights, their gradients, the optimizer's
//             buffers, the quantized weight copies and the gradient maps in flight
//             (ComputeAutogradFootprint). This is the one `wrpn-train describe --measure` checks.
// Stateless functions; thread-safe.
#include <cstdint>
#include <string>
#include <vector>

#include "common/network_spec.h"

namespace wrpn {

// How tensors are stored. kAsTrained: what today's trainer stores (every tensor FP32, masks and
// quantized values included). kPacked: quantized activations at abits, clip masks at 1 bit,
// quantized weight copies at wbits (what a packed implementation could keep); FP32 master
// weights, their gradients and the optimizer state stay FP32 either way.
enum class Storage { kAsTrained, kPacked };

// One tensor kept from the forward pass for the backward pass.
struct SavedTensor {
  std::string op;     // the op that keeps it (OpSpec::name)
  OpKind kind = OpKind::kInput;
  std::string what;   // "input", "output", "indices", "clip mask", "quantized weight", "stats"
  int64_t elements = 0;
  bool per_image = true;  // elements per image (a map) or in total (weights, statistics)
  int bits = 32;          // as stored
  int op_index = 0;       // into NetworkSpec::ops: freed once that op's backward has run
  double Bytes(int batch) const {
    return static_cast<double>(elements) * bits / 8.0 * (per_image ? batch : 1);
  }
};

// The tensors autograd keeps for one step of our trainer on `spec` (LibTorch 1.13, CPU kernels;
// the CUDA kernels keep a boolean mask where the CPU quantizer keeps its input). A map two ops
// keep (a conv's input that is a ReLU's output) appears once, under the first op that keeps it.
std::vector<SavedTensor> SavedForBackward(const NetworkSpec& spec, int wbits, int abits,
                                          Storage storage);

struct FootprintReport {
  int batch = 1;
  double activation_bytes = 0;  // maps kept for the backward pass
  double weight_bytes = 0;      // everything weight-sized (the sum of the four below for autograd)
  double gradient_bytes = 0;    // gradients alive at the peak of the backward pass
  double training_bytes = 0;    // activation + weight + gradient bytes
  double inference_bytes = 0;
  double activation_fraction = 0;  // activation_bytes / training_bytes
  // autograd only: the parts of weight_bytes.
  double parameter_bytes = 0;      // FP32 master weights, biases and batch-norm parameters
  double parameter_grad_bytes = 0; // their gradients (kept between steps: zero_grad zeroes them)
  double optimizer_bytes = 0;      // optimizer buffers (SGD momentum: one per parameter)
  double weight_copy_bytes = 0;    // quantized weight copies and batch-norm statistics saved
};

// The paper's accounting (section 2): every conv/linear layer's input map (once when layers share
// it) and output map at abits (FP32 for the first and last layer's), weights at wbits (FP32 for
// the first and last layer, biases and batch norm), two FP32 gradient maps (the largest layer
// input and the largest layer output); inference = the largest input and output map + weights.
FootprintReport ComputeFootprint(const NetworkSpec& spec, int wbits, int abits, int batch);

// The autograd accounting: the parameters, their gradients, `optimizer_buffers` buffers per
// parameter (1: SGD with momentum, 2: Adam), plus the peak over the backward pass, op by op in
// reverse, of what is alive: the SavedForBackward tensors of the ops not yet run backward (and the
// loss's logits and log-softmax), the op's output gradient, its input gradients and its weight
// gradient before it is accumulated (FP32). activation_bytes is every saved tensor (the end of the
// forward pass), gradient_bytes what the gradients add at the peak. Where the optimizer step is
// the peak (large weights, small batch), training_bytes is that instead: the state, the batch, the
// loss and torch::optim::SGD's two temporaries of the largest parameter (weight decay, Nesterov).
// Inference is as in ComputeFootprint.
FootprintReport ComputeAutogradFootprint(const NetworkSpec& spec, int wbits, int abits, int batch,
                                         Storage storage, int optimizer_buffers = 1);

const char* OpKindName(OpKind kind);

}  // namespace wrpn
