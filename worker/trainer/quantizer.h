#pragma once
// The WRPN quantizers (see docs/recipe.md and ../shared/paper/WRPN.md). Stateless functions on
// tensors; thread-safe. Forward values follow the paper exactly in units of the per-layer scale;
// gradients are straight-through, masked to the clip range.
#include <ATen/core/Tensor.h>

namespace wrpn::trainer {

// Number of positive weight levels for k-bit weights: 2^(k-1) - 1 (k >= 2).
int64_t WeightLevels(int bits);
// Number of non-zero activation levels for k-bit activations: 2^k - 1.
int64_t ActivationLevels(int bits);

// k = 32: w unchanged. k = 1: sign(w) * mean|w| with sign(0) = +1, gradient passed where
// |w| <= scale. 2 <= k <= 16: scale * round(n * clip(w / scale, -1, 1)) / n with n = 2^(k-1)-1;
// gradient passed inside the clip range. `scale` is a 0-d tensor (so no host sync is needed).
at::Tensor QuantizeWeight(const at::Tensor& w, int bits, const at::Tensor& scale);
at::Tensor QuantizeWeight(const at::Tensor& w, int bits, double scale);

// The recipe's per-layer scale, recomputed each step from the FP32 master weights (no gradient):
// min(max|w|, 1.4 * n * mean|w|), i.e. the weight range, but never a zero bin wider than the
// ternary-weight-network threshold 0.7 * mean|w|. k = 1: max|w| (all of w inside the mask).
at::Tensor AdaptiveWeightScale(const at::Tensor& w, int bits);

// QuantizeWeight with the AdaptiveWeightScale of w (the recipe's default); on CUDA a fused
// kernel pair of ours where the build has one.
at::Tensor QuantizeWeightAdaptive(const at::Tensor& w, int bits);

// k = 32: ReLU. 1 <= k <= 16: round(m * clip(a, 0, 1)) / m with m = 2^k - 1; gradient passed
// where 0 <= a <= 1.
at::Tensor QuantizeActivation(const at::Tensor& a, int bits);

// The same activation quantizer through clamp + ATen's fake_quantize. QuantizeActivation itself
// uses faster kernels with the same values: vectorised elementwise ATen ops on the CPU, a fused
// kernel of ours on CUDA where the build has one.
at::Tensor QuantizeActivationAten(const at::Tensor& a, int bits);
bool HaveFusedCudaQuantizer();

}  // namespace wrpn::trainer
