#include "worker/trainer/quantizer.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

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

}  // namespace

int64_t WeightLevels(int bits) { return (int64_t{1} << (bits - 1)) - 1; }
int64_t ActivationLevels(int bits) { return (int64_t{1} << bits) - 1; }

at::Tensor QuantizeWeight(const at::Tensor& w, int bits, const at::Tensor& scale) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32, "weight bits must be 1..16 or 32, got ",
              bits);
  if (bits == 32) return w;
  const at::Tensor s = scale.to(w.scalar_type()).detach();
  if (bits == 1) return BinaryWeight::apply(w, s);
  const int64_t n = WeightLevels(bits);
  // clamp passes the gradient only inside [-s, s]; fake_quantize then sees values inside its
  // range, so its own mask is all ones and its rounding is round-half-to-even, like torch.round.
  const at::Tensor clipped = at::clamp(w, -s, s);
  const at::Tensor step = (s / static_cast<double>(n)).to(at::kFloat).reshape({1});
  const at::Tensor zero = at::zeros({1}, w.options().dtype(at::kInt));
  return at::fake_quantize_per_tensor_affine(clipped, step, zero, -n, n);
}

at::Tensor QuantizeWeight(const at::Tensor& w, int bits, double scale) {
  return QuantizeWeight(w, bits, at::scalar_tensor(scale, w.options()));
}

at::Tensor AdaptiveWeightScale(const at::Tensor& w, int bits) {
  at::NoGradGuard no_grad;
  const at::Tensor a = w.detach().abs();
  if (bits < 2 || bits > 16) return a.max();
  const double n = static_cast<double>(WeightLevels(bits));
  // A zero tensor would give a zero step; fall back to 1 (any positive scale quantizes 0 to 0).
  const at::Tensor s = at::minimum(a.max(), a.mean() * (1.4 * n));
  return at::where(s > 0, s, at::ones_like(s));
}

at::Tensor QuantizeActivation(const at::Tensor& a, int bits) {
  TORCH_CHECK((bits >= 1 && bits <= 16) || bits == 32,
              "activation bits must be 1..16 or 32, got ", bits);
  if (bits == 32) return at::relu(a);
  const int64_t m = ActivationLevels(bits);
  return at::fake_quantize_per_tensor_affine(at::clamp(a, 0.0, 1.0),
                                             1.0 / static_cast<double>(m), 0, 0, m);
}

}  // namespace wrpn::trainer
