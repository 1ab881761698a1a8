#include "worker/trainer/quantizer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <torch/autograd.h>

#include "worker/trainer/cpu_kernels.h"

#ifdef WRPN_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "worker/trainer/cuda/quant_kernels.h"
#endif

namespace wrpn::trainer {
namespace {

// sign(w) * mean|w| forward; straight-through gradient inside [-scale, scale]. No ATen operator
// expresses the binary-weight-network forward with this gradient, hence a custom function.
class BinaryWeight : public torch::autograd::Function<BinaryWeight> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& w,
                            const at::Tensor& scale) {
    ctx->save_for_backward({w, scale});
    const at::Tensor alpha = w.abs().mean();
    return at::where(w >= 0, alpha, -alpha);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& w = saved[0];
    const at::Tensor& scale = saved[1];
    const at::Tensor mask = w.abs() <= scale;
    return {grad[0] * mask, at::Tensor()};
  }
};

#ifdef WRPN_WITH_CUDA_KERNELS
// One fused CUDA kernel forward (values and clip mask), one multiply backward.
class FusedActivation : public torch::autograd::Function<FusedActivation> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t bits) {
    // Elementwise over memory order: any dense layout (channels-last too) is kept as it is.
    at::Tensor y = at::empty_like(x);
    at::Tensor mask = at::empty_like(x, x.options().dtype(at::kBool));
    cuda::ElementType type = cuda::ElementType::kFloat;
    if (x.scalar_type() == at::kBFloat16) type = cuda::ElementType::kBFloat16;
    if (x.scalar_type() == at::kHalf) type = cuda::ElementType::kHalf;
    const cudaError_t err = cuda::ActivationQuantizeForward(
        type, x.data_ptr(), y.data_ptr(), mask.data_ptr<bool>(), x.numel(), static_cast<int>(bits),
        at::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == cudaSuccess, "activation quantizer kernel: ", cudaGetErrorString(err));
    ctx->save_for_backward({mask});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor mask = ctx->get_saved_variables()[0];
    return {grad[0] * mask, at::Tensor()};
  }
};

// The adaptive-scale weight quantizer: two fused kernels forward, one multiply backward.
class FusedWeight : public torch::autograd::Function<FusedWeight> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& w, int64_t bits) {
    at::Tensor out = at::empty_like(w);
    at::Tensor mask = at::empty_like(w, w.options().dtype(at::kBool));
    at::Tensor stats = at::zeros({2}, w.options());
    const cudaError_t err = cuda::WeightQuantizeForward(
        w.data_ptr<float>(), out.data_ptr<float>(), mask.data_ptr<bool>(), stats.data_ptr<float>(),
        w.numel(), static_cast<int>(bits), at::cuda::getCurrentCUDAStream(w.device().index()).stream());
    TORCH_CHECK(err == cudaSuccess, "weight quantizer kernel: ", cudaGetErrorString(err));
    ctx->save_for_backward({mask});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const at::Tensor mask = ctx->get_saved_variables()[0];
    return {grad[0] * mask, at::Tensor()};
  }
};

bool UseFusedKernel(const at::Tensor& a) {
  const auto t = a.scalar_type();
  return a.is_cuda() && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf) &&
         a.is_non_overlapping_and_dense();
}
#endif

// Work split over ATen's intra-op threads; chunks of at least this many elements.
constexpr int64_t kCpuGrain = 32768;

bool UseCpuKernel(const at::Tensor& a) {
  return a.device().is_cpu() && a.scalar_type() == at::kFloat && a.is_non_overlapping_and_dense();
}

// The straight-through gradient of clip(x, lo, hi): `grad` where lo <= x <= hi, else 0, in one
// pass over memory when the gradient has x's layout.
at::Tensor ClipMaskGrad(const at::Tensor& x, const at::Tensor& grad, float lo, float hi) {
  at::Tensor g = grad;
  if (g.strides() != x.strides()) g = g.contiguous(x.suggest_memory_format());
  if (g.strides() != x.strides() || g.scalar_type() != at::kFloat) {
    return grad * at::logical_and(x >= lo, x <= hi);
  }
  at::Tensor out = at::empty_like(x);
  const float* xs = x.data_ptr<float>();
  const float* gs = g.data_ptr<float>();
  float* os = out.data_ptr<float>();
  at::parallel_for(0, x.numel(), kCpuGrain, [&](int64_t b, int64_t e) {
    cpu::ClipMaskBackward(xs + b, gs + b, os + b, e - b, lo, hi);
  });
  return out;
}

// CPU float activations: clip, round to the levels and the clip-mask gradient, each one pass over
// memory in memory order (any dense layout, channels-last too). ATen's clamp backward builds
// boolean tensors in several passes and was most of the quantized network's overhead.
class CpuActivation : public torch::autograd::Function<CpuActivation> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            int64_t levels) {
    at::Tensor y = at::empty_like(x);
    const float* in = x.data_ptr<float>();
    float* out = y.data_ptr<float>();
    const float m = static_cast<float>(levels);
    at::parallel_for(0, x.numel(), kCpuGrain, [&](int64_t b, int64_t e) {
      cpu::ActivationQuantize(in + b, out + b, e - b, m);
    });
    ctx->save_for_backward({x});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    return {ClipMaskGrad(ctx->get_saved_variables()[0], grad[0], 0.0f, 1.0f), at::Tensor()};
  }
};

// CPU float weights at 2..16 bits: clip and fake-quantize in one pass forward (ATen's CPU
// fake_quantize kernel made the weight quantizer most of the CPU quantization overhead), the clip
// mask in one pass backward. Bit-identical to clamp + fake_quantize_per_tensor_affine.
class CpuWeight : public torch::autograd::Function<CpuWeight> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& w,
                            const at::Tensor& scale, int64_t n) {
    const float s = scale.item<float>();
    const float step = (at::scalar_tensor(s, at::kFloat) / static_cast<double>(n)).item<float>();
    const float inv_step = 1.0f / step;
    at::Tensor y = at::empty_like(w);
    const float* in = w.data_ptr<float>();
    float* out = y.data_ptr<float>();
    at::parallel_for(0, w.numel(), kCpuGrain, [&](int64_t b, int64_t e) {
      cpu::WeightQuantize(in + b, out + b, e - b, s, step, inv_step, static_cast<float>(n));
    });
    ctx->save_for_backward({w});
    ctx->saved_data["s"] = static_cast<double>(s);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const float s = static_cast<float>(ctx->saved_data["s"].toDouble());
    return {ClipMaskGrad(ctx->get_saved_variables()[0], grad[0], -s, s), at::Tensor(), at::Tensor()};
  }
};

// LSQ's quantizer with the paper's step gradient (an ATen composition would differentiate the
// round as zero and give the step the wrong gradient).
class LsqFunction : public torch::autograd::Function<LsqFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& v,
                            const at::Tensor& step, int64_t qn, int64_t qp, double grad_scale) {
    const at::Tensor s = step.detach().to(v.scalar_type()).clamp_min(1e-8);
    ctx->save_for_backward({v, s});
    ctx->saved_data["qn"] = qn;
    ctx->saved_data["qp"] = qp;
    ctx->saved_data["g"] = grad_scale;
    ctx->saved_data["dtype"] = static_cast<int64_t>(step.scalar_type());
    return at::round(at::clamp(v / s, -static_cast<double>(qn), static_cast<double>(qp))) * s;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor u = saved[0] / saved[1];
    const double qn = static_cast<double>(ctx->saved_data["qn"].toInt());
    const double qp = static_cast<double>(ctx->saved_data["qp"].toInt());
    const at::Tensor inside = at::logical_and(u > -qn, u < qp);
    const at::Tensor ds = at::where(inside, at::round(u) - u,
                                    at::where(u <= -qn, at::scalar_tensor(-qn, u.options()),
                                              at::scalar_tensor(qp, u.options())));
    const at::Tensor g = grad[0];
    const at::Tensor grad_s = (g * ds).sum().mul(ctx->saved_data["g"].toDouble());
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {g * inside, grad_s.to(dtype), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// PACT's activation with the paper's straight-through gradients for x and alpha.
class PactFunction : public torch::autograd::Function<PactFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& alpha, int64_t levels) {
    const at::Tensor a = alpha.detach().to(x.scalar_type()).clamp_min(1e-8);
    ctx->save_for_backward({x, a});
    ctx->saved_data["dtype"] = static_cast<int64_t>(alpha.scalar_type());
    const double m = static_cast<double>(levels);
    const at::Tensor y = at::minimum(at::relu(x), a);
    return at::round(y * m / a) * a / m;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& a = saved[1];
    const at::Tensor g = grad[0];
    const at::Tensor grad_x = g * at::logical_and(x >= 0, x < a);
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const at::Tensor grad_a = (g * (x >= a)).sum().to(dtype);
    return {grad_x, grad_a, at::Tensor()};
  }
};

}  // namespace

LsqRange LsqWeightRange(int bits) {
  TORCH_CHECK(bits >= 2 && bits <= 16, "LSQ weight bits must be 2..16, got ", bits);
  return {int64_t{1} << (bits - 1), (int64_t{1} << (bits - 1)) - 1};
}

LsqRange LsqActivationRange(int bits) {
  TORCH_CHECK(bits >= 1 && bits <= 16, "LSQ activation bits must be 1..16, got ", bits);
  return {0, (int64_t{1} << bits) - 1};
}

at::Tensor LsqQuantize(const at::Tensor& v, const at::Tensor& step, LsqRange range,
                       double grad_scale) {
  return LsqFunction::apply(v, step, range.qn, range.qp, grad_scale);
}

double LsqGradScale(int64_t n, int64_t qp) {
  return 1.0 / std::sqrt(static_cast<double>(n) * static_cast<double>(qp));
}

at::Tensor LsqInitialStep(const at::Tensor& v, int64_t qp) {
  at::NoGradGuard no_grad;
  const at::Tensor mean_abs = v.detach().abs().mean().to(at::kFloat);
  return (mean_abs * (2.0 / std::sqrt(static_cast<double>(qp)))).clamp_min(1e-8);
}

at::Tensor PactActivation(const at::Tensor& x, const at::Tensor& alpha, int bits) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32,
              "activation bits must be 1..16 or 32, got ", bits);
  if (bits == 32) return at::relu(x);
  return PactFunction::apply(x, alpha, ActivationLevels(bits));
}

at::Tensor DorefaWeight(const at::Tensor& w, int bits) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32, "weight bits must be 1..16 or 32, got ",
              bits);
  if (bits == 32) return w;
  if (bits == 1) return QuantizeWeight(w, 1, AdaptiveWeightScale(w, 1));
  const at::Tensor t = at::tanh(w);
  const at::Tensor x = t / (2 * t.abs().max().clamp_min(1e-30)) + 0.5;
  const double n = static_cast<double>(ActivationLevels(bits));
  const at::Tensor q = x + (at::round(x * n) / n - x).detach();
  return 2 * q - 1;
}

bool HaveFusedCudaQuantizer() {
#ifdef WRPN_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

at::Tensor QuantizeActivationAten(const at::Tensor& a, int bits) {
  const int64_t m = ActivationLevels(bits);
  return at::fake_quantize_per_tensor_affine(at::clamp(a, 0.0, 1.0),
                                             1.0 / static_cast<double>(m), 0, 0, m);
}

int64_t WeightLevels(int bits) { return (int64_t{1} << (bits - 1)) - 1; }
int64_t ActivationLevels(int bits) { return (int64_t{1} << bits) - 1; }

at::Tensor QuantizeWeight(const at::Tensor& w, int bits, const at::Tensor& scale) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32, "weight bits must be 1..16 or 32, got ",
              bits);
  if (bits == 32) return w;
  const at::Tensor s = scale.to(w.scalar_type()).detach();
  if (bits == 1) return BinaryWeight::apply(w, s);
  const int64_t n = WeightLevels(bits);
  if (UseCpuKernel(w) && s.numel() == 1) return CpuWeight::apply(w, s, n);
  // clamp passes the gradient only inside [-s, s]; fake_quantize then sees values inside its
  // range, so its own mask is all ones and its rounding is round-half-to-even, like torch.round.
  const at::Tensor clipped = at::clamp(w, -s, s);
  const at::Tensor step = (s / static_cast<double>(n)).to(at::kFloat).reshape({1});
  // fake_quantize takes its zero point as a tensor on the weight's device: keep one per device.
  thread_local std::map<std::pair<int, int>, at::Tensor> zeros;
  at::Tensor& zero = zeros[{static_cast<int>(w.device().type()), w.device().index()}];
  if (!zero.defined()) zero = at::zeros({1}, w.options().dtype(at::kInt));
  return at::fake_quantize_per_tensor_affine(clipped, step, zero, -n, n);
}

at::Tensor QuantizeWeightAdaptive(const at::Tensor& w, int bits) {
#ifdef WRPN_WITH_CUDA_KERNELS
  if (bits >= 2 && bits <= 16 && w.scalar_type() == at::kFloat && UseFusedKernel(w)) {
    return FusedWeight::apply(w, bits);
  }
#endif
  if (bits == 32) return w;
  return QuantizeWeight(w, bits, AdaptiveWeightScale(w, bits));
}

at::Tensor QuantizeWeight(const at::Tensor& w, int bits, double scale) {
  return QuantizeWeight(w, bits, at::scalar_tensor(scale, w.options()));
}

at::Tensor AdaptiveWeightScale(const at::Tensor& w, int bits) {
  at::NoGradGuard no_grad;
  const at::Tensor d = w.detach();
  const at::Tensor max_abs = at::linalg_vector_norm(d, std::numeric_limits<double>::infinity());
  if (bits < 2 || bits > 16) return max_abs;
  const double n = static_cast<double>(WeightLevels(bits));
  const at::Tensor mean_abs_scaled = at::linalg_vector_norm(d, 1) * (1.4 * n / static_cast<double>(d.numel()));
  // A zero tensor would give a zero step: keep the scale positive (any positive scale maps 0 to 0).
  return at::minimum(max_abs, mean_abs_scaled).clamp_min_(1e-30);
}

at::Tensor QuantizeActivation(const at::Tensor& a, int bits) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32,
              "activation bits must be 1..16 or 32, got ", bits);
  if (bits == 32) return at::relu(a);
#ifdef WRPN_WITH_CUDA_KERNELS
  if (UseFusedKernel(a)) return FusedActivation::apply(a, bits);
#endif
  if (UseCpuKernel(a)) return CpuActivation::apply(a, ActivationLevels(bits));
  return QuantizeActivationAten(a, bits);
}

}  // namespace wrpn::trainer
