#include "worker/trainer/quantizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

namespace wrpn::trainer {
namespace {

std::set<float> Distinct(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::set<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<float> Values(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor T(std::vector<float> v) { return torch::tensor(v); }

TEST(Quantizer, WeightLevelsOnDenseRamp) {
  const torch::Tensor ramp = torch::linspace(-1.5, 1.5, 400001);
  EXPECT_EQ(Distinct(QuantizeWeight(ramp, 1, 1.0)).size(), 2u);
  for (int k = 2; k <= 16; ++k) {
    const int64_t n = (int64_t{1} << (k - 1)) - 1;
    EXPECT_EQ(static_cast<int64_t>(Distinct(QuantizeWeight(ramp, k, 1.0)).size()), 2 * n + 1)
        << "k=" << k;
  }
  EXPECT_EQ(Distinct(QuantizeWeight(ramp, 32, 1.0)).size(), Distinct(ramp).size());
}

TEST(Quantizer, ActivationLevelsOnDenseRamp) {
  const torch::Tensor ramp = torch::linspace(-0.5, 1.5, 400001);
  for (int k = 1; k <= 16; ++k) {
    EXPECT_EQ(static_cast<int64_t>(Distinct(QuantizeActivation(ramp, k)).size()),
              int64_t{1} << k)
        << "k=" << k;
  }
}

TEST(Quantizer, TernaryWeightValuesIncludingTiesAndClipEdges) {
  // n = 1: round(clip(w)) with round half to even, so +-0.5 go to 0.
  const auto q = Values(QuantizeWeight(T({-2, -1, -0.6f, -0.5f, -0.4f, 0, 0.4f, 0.5f, 0.6f, 1, 2}), 2, 1.0));
  const std::vector<float> want = {-1, -1, -1, 0, 0, 0, 0, 0, 1, 1, 1};
  ASSERT_EQ(q.size(), want.size());
  for (size_t i = 0; i < q.size(); ++i) EXPECT_FLOAT_EQ(q[i], want[i]) << i;
}

TEST(Quantizer, FourBitWeightValues) {
  // n = 7: 15 levels k/7; 0.3 -> round(2.1) = 2; 0.05 -> round(0.35) = 0 (the trap: |w| < 1/14).
  const auto q = Values(QuantizeWeight(T({0.05f, -0.05f, 0.3f, -0.3f, 0.93f, 1.7f, -1.0f}), 4, 1.0));
  const std::vector<float> want = {0, 0, 2.f / 7, -2.f / 7, 1, 1, -1};
  for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(q[i], want[i], 1e-6) << i;
  // A scale s maps the same grid onto [-s, s].
  const auto s = Values(QuantizeWeight(T({0.15f, 0.3f}), 4, 0.5));
  EXPECT_NEAR(s[0], 0.5 * 2 / 7, 1e-6);
  EXPECT_NEAR(s[1], 0.5 * 4 / 7, 1e-6);
}

TEST(Quantizer, MatchesPaperFormulaOnRandomWeights) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({20000}) * 0.7;
  for (int k : {2, 3, 4, 6, 8}) {
    const double n = std::pow(2.0, k - 1) - 1;
    const torch::Tensor ref = torch::round(torch::clamp(w, -1, 1) * n) / n;
    // Away from rounding ties the fused kernel and the formula agree exactly.
    const torch::Tensor frac = torch::clamp(w, -1, 1) * n - torch::floor(torch::clamp(w, -1, 1) * n);
    const torch::Tensor safe = (frac - 0.5).abs() > 1e-4;
    const torch::Tensor diff = (QuantizeWeight(w, k, 1.0) - ref).abs().masked_select(safe);
    EXPECT_LT(diff.max().item<float>(), 1e-6) << "k=" << k;
  }
}

TEST(Quantizer, ActivationValuesIncludingTiesAndClipEdges) {
  // k = 1: {0, 1}, 0.5 is a tie and goes to 0 (half to even).
  auto q = Values(QuantizeActivation(T({-1, 0, 0.49f, 0.5f, 0.51f, 1, 3}), 1));
  std::vector<float> want = {0, 0, 0, 0, 1, 1, 1};
  for (size_t i = 0; i < q.size(); ++i) EXPECT_FLOAT_EQ(q[i], want[i]) << i;
  // k = 2: {0, 1/3, 2/3, 1}; 0.5 * 3 = 1.5 is a tie and goes to 2.
  q = Values(QuantizeActivation(T({-0.2f, 0.1f, 0.2f, 0.5f, 0.9f, 1.2f}), 2));
  want = {0, 0, 1.f / 3, 2.f / 3, 1, 1};
  for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(q[i], want[i], 1e-6) << i;
}

// The CPU path (our SSE2 loops) is bit-identical to the paper's formula round(m * clip(a)) / m
// written in ATen ops, forward, and to clamp's gradient, backward, for every bit width, odd sizes
// (the scalar tail), channels-last, ties and NaN. (ATen's fake_quantize multiplies by 1/m instead
// of dividing by m and can differ in the last bit at 16 bits.)
TEST(Quantizer, CpuActivationKernelMatchesAtenBitForBit) {
  torch::manual_seed(3);
  for (int k : {1, 2, 3, 4, 8, 16}) {
    for (bool channels_last : {false, true}) {
      torch::Tensor x = torch::randn({3, 5, 7, 9}) * 1.5 + 0.5;
      // Exact ties of this k and the clip edges.
      const float m = static_cast<float>(ActivationLevels(k));
      x.view({-1}).index_put_({0}, 0.5f / m);
      x.view({-1}).index_put_({1}, 1.5f / m);
      x.view({-1}).index_put_({2}, 0.0f);
      x.view({-1}).index_put_({3}, 1.0f);
      x.view({-1}).index_put_({4}, std::nanf(""));
      if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      const torch::Tensor upstream = torch::randn(x.sizes());
      torch::Tensor a = x.clone().requires_grad_(true);
      torch::Tensor b = x.clone().requires_grad_(true);
      const torch::Tensor qa = QuantizeActivation(a, k);
      const torch::Tensor clipped = torch::clamp(b, 0.0, 1.0);
      const torch::Tensor qb = clipped.detach().mul(m).round().div(m);
      (qa * upstream).sum().backward();
      (clipped * upstream).sum().backward();
      EXPECT_TRUE(qa.equal(qb) || (qa.isnan().equal(qb.isnan()) &&
                                    qa.nan_to_num(0).equal(qb.nan_to_num(0))))
          << "k=" << k << " channels_last=" << channels_last;
      EXPECT_TRUE(a.grad().equal(b.grad())) << "k=" << k << " channels_last=" << channels_last;
      EXPECT_EQ(qa.is_contiguous(torch::MemoryFormat::ChannelsLast), channels_last);
    }
  }
}

// The CPU weight path (our SSE2 loop) is bit-identical to clamp + ATen's fake_quantize, forward,
// and passes the gradient exactly where |w| <= s, for k = 2..16, odd sizes and exact ties.
TEST(Quantizer, CpuWeightKernelMatchesAtenBitForBit) {
  torch::manual_seed(5);
  for (int k : {2, 3, 4, 8, 16}) {
    torch::Tensor w = torch::randn({7, 5, 3, 3}) * 0.1;
    const int64_t n = WeightLevels(k);
    const float s = 0.15f;
    const float step = s / static_cast<float>(n);
    w.view({-1}).index_put_({0}, 0.5f * step);   // tie -> 0
    w.view({-1}).index_put_({1}, -1.5f * step);  // tie -> -2 (even)
    w.view({-1}).index_put_({2}, s);
    w.view({-1}).index_put_({3}, -s);
    w.view({-1}).index_put_({4}, -0.0f);
    torch::Tensor a = w.clone().requires_grad_(true);
    const torch::Tensor qa = QuantizeWeight(a, k, static_cast<double>(s));
    const torch::Tensor want = at::fake_quantize_per_tensor_affine(
        torch::clamp(w, -s, s), static_cast<double>(step), 0, -n, n);
    EXPECT_TRUE(qa.equal(want)) << "k=" << k << " max diff "
                                << (qa - want).abs().max().item<float>();
    EXPECT_FALSE(std::signbit(qa.view({-1})[4].item<float>())) << "k=" << k << ": +0, not -0";
    const torch::Tensor upstream = torch::randn(w.sizes());
    (qa * upstream).sum().backward();
    EXPECT_TRUE(a.grad().equal(upstream * (w.abs() <= s))) << "k=" << k;
  }
}

TEST(Quantizer, WeightGradientIsStraightThroughInsideClipRange) {
  for (int k : {1, 2, 4, 8}) {
    torch::Tensor w = T({-1.5f, -1, -0.3f, 0, 0.3f, 1, 1.5f}).requires_grad_(true);
    QuantizeWeight(w, k, 1.0).sum().backward();
    const auto g = Values(w.grad());
    const std::vector<float> want = {0, 1, 1, 1, 1, 1, 0};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_FLOAT_EQ(g[i], want[i]) << "k=" << k << " i=" << i;
  }
  // No-op at 32 bits: identity gradient everywhere.
  torch::Tensor w = T({-3, 0.2f, 5}).requires_grad_(true);
  QuantizeWeight(w, 32, 1.0).sum().backward();
  for (float g : Values(w.grad())) EXPECT_FLOAT_EQ(g, 1);
}

TEST(Quantizer, ActivationGradientIsStraightThroughInsideClipRange) {
  for (int k : {1, 2, 4, 8}) {
    torch::Tensor a = T({-0.5f, 0, 0.37f, 1, 1.5f}).requires_grad_(true);
    (QuantizeActivation(a, k) * 2).sum().backward();
    const auto g = Values(a.grad());
    const std::vector<float> want = {0, 2, 2, 2, 0};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_FLOAT_EQ(g[i], want[i]) << "k=" << k << " i=" << i;
  }
  // 32 bits is a ReLU: gradient for positive inputs only, no upper clip.
  torch::Tensor a = T({-0.5f, 0.37f, 5}).requires_grad_(true);
  QuantizeActivation(a, 32).sum().backward();
  const auto g = Values(a.grad());
  EXPECT_FLOAT_EQ(g[0], 0);
  EXPECT_FLOAT_EQ(g[1], 1);
  EXPECT_FLOAT_EQ(g[2], 1);
}

TEST(Quantizer, BinaryWeightsAreSignTimesMeanMagnitude) {
  // mean|w| = (2 + 0.5 + 0 + 0.5 + 3) / 5 = 1.2; sign(0) = +1.
  const auto q = Values(QuantizeWeight(T({-2, -0.5f, 0, 0.5f, 3}), 1, 10.0));
  const std::vector<float> want = {-1.2f, -1.2f, 1.2f, 1.2f, 1.2f};
  for (size_t i = 0; i < q.size(); ++i) EXPECT_FLOAT_EQ(q[i], want[i]) << i;
}

TEST(Quantizer, NoOpAt32Bits) {
  const torch::Tensor w = torch::randn({100});
  EXPECT_TRUE(torch::equal(QuantizeWeight(w, 32, 1.0), w));
  EXPECT_TRUE(torch::equal(QuantizeActivation(w, 32), torch::relu(w)));
}

TEST(Quantizer, RejectsInvalidBits) {
  const torch::Tensor w = torch::randn({4});
  EXPECT_THROW(QuantizeWeight(w, 0, 1.0), c10::Error);
  EXPECT_THROW(QuantizeWeight(w, 17, 1.0), c10::Error);
  EXPECT_THROW(QuantizeActivation(w, 33), c10::Error);
}

TEST(Recipe, LiteralScaleZeroesKaimingWeightsAdaptiveScaleKeepsThemAlive) {
  // The trap from WRPN.md: Kaiming-initialised 3x3x64 conv weights are far below 0.5.
  torch::manual_seed(0);
  torch::Tensor w = torch::empty({64, 64, 3, 3});
  torch::nn::init::kaiming_normal_(w, 0, torch::kFanOut, torch::kReLU);
  const double literal_nonzero = QuantizeWeight(w, 2, 1.0).ne(0).to(torch::kFloat).mean().item<double>();
  EXPECT_LT(literal_nonzero, 0.001);
  const double four_bit_literal = QuantizeWeight(w, 4, 1.0).ne(0).to(torch::kFloat).mean().item<double>();
  EXPECT_LT(four_bit_literal, 0.5);
  for (int k : {2, 3, 4, 8}) {
    const torch::Tensor s = AdaptiveWeightScale(w, k);
    const double nonzero = QuantizeWeight(w, k, s).ne(0).to(torch::kFloat).mean().item<double>();
    EXPECT_GT(nonzero, 0.4) << "k=" << k;
    // Every level is in use at low precision (at 8 bits the extreme levels may stay empty).
    const size_t levels = Distinct(QuantizeWeight(w, k, s)).size();
    if (k <= 4) EXPECT_EQ(levels, static_cast<size_t>(2 * WeightLevels(k) + 1)) << "k=" << k;
    EXPECT_GT(levels, static_cast<size_t>(WeightLevels(k))) << "k=" << k;
  }
}

TEST(Recipe, AdaptiveScaleIsRangeCappedByTernaryThreshold) {
  const torch::Tensor w = T({-4, -1, 0.5f, 1, 2});  // max 4, mean 1.7
  EXPECT_NEAR(AdaptiveWeightScale(w, 2).item<float>(), 1.4 * 1 * 1.7, 1e-5);  // 2.38 < 4
  EXPECT_NEAR(AdaptiveWeightScale(w, 4).item<float>(), 4.0, 1e-6);            // 16.66 > 4
  // All-zero weights still get a positive scale (and quantize to zero).
  EXPECT_GT(AdaptiveWeightScale(torch::zeros({3}), 4).item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(QuantizeWeight(torch::zeros({3}), 4, AdaptiveWeightScale(torch::zeros({3}), 4)),
                           torch::zeros({3})));
}

}  // namespace
}  // namespace wrpn::trainer
