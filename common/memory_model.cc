#include "common/memory_model.h"

#include <algorithm>

namespace wrpn {
namespace {

// Collects the saved tensors, each map once.
class SavedSet {
 public:
  SavedSet(const NetworkSpec& spec, int abits, Storage storage)
      : spec_(spec), abits_(abits), storage_(storage), kept_(spec.ops.size(), false) {}

  // `owner` keeps the output map of op `index` (`what` names which of its tensors it is).
  void KeepMap(const OpSpec& owner, int index, const char* what) {
    if (kept_[static_cast<size_t>(index)]) return;
    kept_[static_cast<size_t>(index)] = true;
    const OpSpec& map = spec_.ops[static_cast<size_t>(index)];
    const bool quantized_values = map.kind == OpKind::kActivation && map.quantized && abits_ != 32;
    const int bits = storage_ == Storage::kPacked && quantized_values ? abits_ : 32;
    Add(owner, what, map.OutputElements(), true, bits);
  }
  void Add(const OpSpec& owner, const char* what, int64_t elements, bool per_image, int bits) {
    const int index = static_cast<int>(&owner - spec_.ops.data());
    out_.push_back(SavedTensor{owner.name, owner.kind, what, elements, per_image, bits, index});
  }
  std::vector<SavedTensor> Take() { return std::move(out_); }

 private:
  const NetworkSpec& spec_;
  int abits_;
  Storage storage_;
  std::vector<bool> kept_;
  std::vector<SavedTensor> out_;
};

// Weight-sized FP32 buffers a conv's backward holds at once on the CPU (LibTorch 1.13, oneDNN):
// the weight gradient and oneDNN's reordered copies of the weight and the gradient, all through
// LibTorch's allocator. Measured, not derived: 5 matches ResNet-34 and ResNet-50 (1x and 0.5x,
// batch 4 to 32) within 0.2% (docs/recipe.md); a linear layer's backward holds just the gradient.
constexpr double kConvBackwardWeightBuffers = 5;

// Peak bytes alive during the backward pass (op by op in reverse): saved tensors of the ops not
// yet run backward, plus the op's output gradient, input gradients and weight gradient.
double BackwardPeak(const NetworkSpec& spec, const std::vector<SavedTensor>& saved, int batch,
                    double loss_bytes) {
  std::vector<double> owned(spec.ops.size(), 0);
  for (const auto& t : saved) owned[static_cast<size_t>(t.op_index)] += t.Bytes(batch);
  double alive = loss_bytes;
  for (double b : owned) alive += b;
  double peak = alive;
  for (size_t i = spec.ops.size(); i-- > 1;) {
    const OpSpec& op = spec.ops[i];
    double grads = static_cast<double>(op.OutputElements());
    for (int in : op.inputs) grads += static_cast<double>(spec.ops[static_cast<size_t>(in)].OutputElements());
    grads *= 4.0 * batch;
    if (op.layer >= 0) {
      const double w = 4.0 * static_cast<double>(spec.layers[static_cast<size_t>(op.layer)].WeightCount());
      grads += (op.kind == OpKind::kConv ? kConvBackwardWeightBuffers : 1) * w;
    }
    peak = std::max(peak, alive + grads);
    alive -= owned[i];
  }
  return peak;
}

}  // namespace

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kInput: return "input";
    case OpKind::kConv: return "conv";
    case OpKind::kLinear: return "linear";
    case OpKind::kBatchNorm: return "batchnorm";
    case OpKind::kActivation: return "activation";
    case OpKind::kMaxPool: return "maxpool";
    case OpKind::kAvgPool: return "avgpool";
    case OpKind::kAdd: return "add";
    case OpKind::kConcat: return "concat";
  }
  return "?";
}

std::vector<SavedTensor> SavedForBackward(const NetworkSpec& spec, int wbits, int abits,
                                          Storage storage) {
  SavedSet s(spec, abits, storage);
  const bool packed = storage == Storage::kPacked;
  for (size_t i = 0; i < spec.ops.size(); ++i) {
    const OpSpec& op = spec.ops[i];
    const int in = op.inputs.empty() ? -1 : op.inputs.front();
    switch (op.kind) {
      case OpKind::kInput:
      case OpKind::kAdd:      // add and cat backward need no tensor
      case OpKind::kConcat:
        break;
      case OpKind::kConv:
      case OpKind::kLinear: {  // convolution / addmm / mm keep the input and the weight used
        s.KeepMap(op, in, "input");
        const LayerSpec& l = spec.layers[static_cast<size_t>(op.layer)];
        if (l.quantized && wbits != 32) {
          s.Add(op, "quantized weight", l.WeightCount(), false, packed ? wbits : 32);
        }
        break;
      }
      case OpKind::kBatchNorm:  // native_batch_norm keeps its input and the batch mean/invstd
        s.KeepMap(op, in, "input");
        s.Add(op, "stats", 2 * int64_t{op.channels}, false, 32);
        break;
      case OpKind::kActivation:
        if (op.quantized && abits != 32) {
          // Our CPU quantizer keeps its FP32 input for the clip mask; packed: the mask, 1 bit.
          if (packed) {
            s.Add(op, "clip mask", op.OutputElements(), true, 1);
          } else {
            s.KeepMap(op, in, "input");
          }
        } else {
          s.KeepMap(op, static_cast<int>(i), "output");  // relu keeps its result
        }
        break;
      case OpKind::kMaxPool:  // max_pool2d_with_indices keeps its input and int64 indices
        s.KeepMap(op, in, "input");
        s.Add(op, "indices", op.OutputElements(), true, 64);
        break;
      case OpKind::kAvgPool:  // a 1x1 adaptive pool is a mean (keeps nothing); others the input
        if (op.height != 1 || op.width != 1) s.KeepMap(op, in, "input");
        break;
    }
  }
  return s.Take();
}

FootprintReport ComputeFootprint(const NetworkSpec& spec, int wbits, int abits, int batch) {
  FootprintReport r;
  r.batch = batch;
  double weights = 0, acts = 0;
  int64_t largest_in = 0, largest_out = 0;
  for (const auto& l : spec.layers) {
    weights += static_cast<double>(l.WeightCount()) * (l.quantized ? wbits : 32) / 8.0;
    if (l.has_bias) weights += 4.0 * l.out_channels;
    if (!l.input_shared) {
      acts += static_cast<double>(l.InputElements()) * (l.input_quantized ? abits : 32) / 8.0;
    }
    acts += static_cast<double>(l.OutputElements()) * (l.quantized ? abits : 32) / 8.0;
    largest_in = std::max(largest_in, l.InputElements());
    largest_out = std::max(largest_out, l.OutputElements());
  }
  weights += 4.0 * static_cast<double>(spec.norm_params);
  r.weight_bytes = weights;
  r.activation_bytes = acts * batch;
  r.gradient_bytes = 4.0 * static_cast<double>(largest_in + largest_out) * batch;
  r.training_bytes = r.activation_bytes + r.weight_bytes + r.gradient_bytes;
  // Inference keeps only the largest input and output maps alive, at the activation precision.
  r.inference_bytes =
      static_cast<double>(largest_in + largest_out) * batch * std::min(abits, 32) / 8.0 +
      r.weight_bytes;
  r.activation_fraction = r.activation_bytes / r.training_bytes;
  return r;
}

FootprintReport ComputeAutogradFootprint(const NetworkSpec& spec, int wbits, int abits, int batch,
                                         Storage storage, int optimizer_buffers) {
  FootprintReport r = ComputeFootprint(spec, wbits, abits, batch);  // for inference_bytes
  const auto saved = SavedForBackward(spec, wbits, abits, storage);
  // The loss: the logits and log_softmax's result (FP32) and the int64 targets.
  const double loss = (2.0 * 4 * spec.input.classes + 8.0) * batch;
  r.activation_bytes = loss;
  r.weight_copy_bytes = 0;
  for (const auto& t : saved) (t.per_image ? r.activation_bytes : r.weight_copy_bytes) += t.Bytes(batch);
  // Batch norm's running mean and variance are buffers beside the parameters.
  r.parameter_bytes = 4.0 * static_cast<double>(spec.ParamCount() + spec.norm_params);
  r.parameter_grad_bytes = 4.0 * static_cast<double>(spec.ParamCount());
  r.optimizer_bytes = r.parameter_grad_bytes * optimizer_buffers;
  const double state = r.parameter_bytes + r.parameter_grad_bytes + r.optimizer_bytes;
  r.weight_bytes = state + r.weight_copy_bytes;
  // The optimizer step (torch::optim::SGD with weight decay and Nesterov momentum) makes two
  // temporaries the size of the parameter it updates, one parameter at a time, while the batch and
  // the loss are still held.
  int64_t largest = 0;
  for (const auto& l : spec.layers) largest = std::max(largest, l.WeightCount());
  const double step = 2.0 * 4 * static_cast<double>(largest) + loss +
                      4.0 * static_cast<double>(spec.ops.front().OutputElements()) * batch;
  r.training_bytes = state + std::max(BackwardPeak(spec, saved, batch, loss), step);
  r.gradient_bytes = r.training_bytes - r.activation_bytes - r.weight_bytes;
  r.activation_fraction = r.activation_bytes / r.training_bytes;
  return r;
}

}  // namespace wrpn
