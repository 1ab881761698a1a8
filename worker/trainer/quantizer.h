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

// ---- The schemes beyond WRPN (docs/recipe.md cites the papers and these formulas) ----

// LSQ's integer range: weights signed, Qn = 2^(b-1), Qp = 2^(b-1) - 1 (b >= 2); activations
// unsigned, Qn = 0, Qp = 2^b - 1 (b >= 1).
struct LsqRange {
  int64_t qn = 0;
  int64_t qp = 0;
};
LsqRange LsqWeightRange(int bits);
LsqRange LsqActivationRange(int bits);

// LSQ (Esser et al. 2020): v_q = round(clip(v / s, -Qn, Qp)) * s with a learned 0-d step s.
// Gradients: dv_q/dv = 1 where -Qn < v/s < Qp, else 0; dv_q/ds = round(v/s) - v/s inside,
// -Qn where v/s <= -Qn, Qp where v/s >= Qp, and the step's gradient summed over v is multiplied
// by `grad_scale` (the paper's g = 1 / sqrt(N * Qp)). A step below 1e-8 is used as 1e-8.
at::Tensor LsqQuantize(const at::Tensor& v, const at::Tensor& step, LsqRange range,
                       double grad_scale);
// g = 1 / sqrt(n * Qp): n is the layer's weight count, or its activation count per image.
double LsqGradScale(int64_t n, int64_t qp);
// The paper's initial step 2 * mean|v| / sqrt(Qp) (no gradient; positive for an all-zero v).
at::Tensor LsqInitialStep(const at::Tensor& v, int64_t qp);

// PACT (Choi et al. 2018): y = clip(x, 0, alpha), y_q = round(y * m / alpha) * alpha / m with
// m = 2^b - 1 and a learned 0-d alpha. Gradients (straight-through round): dy_q/dx = 1 where
// 0 <= x < alpha, else 0; dy_q/dalpha = 1 where x >= alpha, else 0. bits == 32: ReLU. An alpha
// below 1e-8 is used as 1e-8.
at::Tensor PactActivation(const at::Tensor& x, const at::Tensor& alpha, int bits);

// DoReFa-Net (Zhou et al. 2016) weights: k = 32: w. 2 <= k <= 16:
// 2 * q_k(tanh(w) / (2 max|tanh w|) + 0.5) - 1 with q_k(x) = round((2^k - 1) x) / (2^k - 1),
// the round straight-through and the rest (tanh, the max) differentiated as written. k = 1: the
// paper's own 1-bit rule sign(w) * mean|w| with a straight-through gradient.
at::Tensor DorefaWeight(const at::Tensor& w, int bits);
// DoReFa activations q_k(clip(a, 0, 1)) are exactly QuantizeActivation.

}  // namespace wrpn::trainer
