// The quantization schemes beyond WRPN (LSQ, PACT, DoReFa): values and gradients by hand at 2 and
// 4 bits, the learned parameters' gradients against finite differences, and the networks' use
// of them (one step trains every parameter, steps and alphas included).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>

#include "worker/trainer/networks.h"
#include "worker/trainer/quantizer.h"

namespace wrpn::trainer {
namespace {

std::vector<double> Values(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kDouble).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void ExpectNear(const torch::Tensor& got, const std::vector<double>& want, double tol,
                const char* what) {
  const auto v = Values(got);
  ASSERT_EQ(v.size(), want.size()) << what;
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], want[i], tol) << what << " [" << i << "]";
}

torch::Tensor D(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }
torch::Tensor Scalar(double v) { return torch::full({}, v, torch::kDouble).requires_grad_(); }

// Central difference of f at x.
double FiniteDifference(const std::function<double(double)>& f, double x, double h = 1e-6) {
  return (f(x + h) - f(x - h)) / (2 * h);
}

// ---- LSQ ----

TEST(Lsq, Ranges) {
  EXPECT_EQ(LsqWeightRange(2).qn, 2);
  EXPECT_EQ(LsqWeightRange(2).qp, 1);
  EXPECT_EQ(LsqWeightRange(4).qn, 8);
  EXPECT_EQ(LsqWeightRange(4).qp, 7);
  EXPECT_EQ(LsqActivationRange(2).qn, 0);
  EXPECT_EQ(LsqActivationRange(2).qp, 3);
  EXPECT_EQ(LsqActivationRange(4).qp, 15);
  EXPECT_NEAR(LsqGradScale(6, 1), 1 / std::sqrt(6.0), 1e-15);
}

TEST(Lsq, TwoBitWeightsValuesAndGradients) {
  // s = 0.5: v/s = -4, -1.2, -0.4, 0.2, 0.6, 1.6 -> clip to [-2, 1] -> round -> -2, -1, 0, 0, 1, 1.
  const torch::Tensor v = D({-2.0, -0.6, -0.2, 0.1, 0.3, 0.8}).requires_grad_();
  const torch::Tensor s = Scalar(0.5);
  const double g = LsqGradScale(6, 1);
  const torch::Tensor q = LsqQuantize(v, s, LsqWeightRange(2), g);
  ExpectNear(q, {-1, -0.5, 0, 0, 0.5, 0.5}, 1e-12, "values");
  (q * D({1, 2, 3, 4, 5, 6})).sum().backward();
  // dv: 1 strictly inside (-2, 1); ds: -Qn below, round(u) - u inside, Qp above:
  // -2*1 + 0.2*2 + 0.4*3 - 0.2*4 + 0.4*5 + 1*6 = 6.8.
  ExpectNear(v.grad(), {0, 2, 3, 4, 5, 0}, 1e-12, "dv");
  EXPECT_NEAR(s.grad().item<double>(), 6.8 * g, 1e-9);
}

TEST(Lsq, FourBitWeightsValuesAndGradients) {
  // s = 0.25: v/s = -12, -4.4, 0.2, 2.4, 7.6 -> clip [-8, 7] -> round -> -8, -4, 0, 2, 7.
  const torch::Tensor v = D({-3.0, -1.1, 0.05, 0.6, 1.9}).requires_grad_();
  const torch::Tensor s = Scalar(0.25);
  const double g = LsqGradScale(5, 7);
  const torch::Tensor q = LsqQuantize(v, s, LsqWeightRange(4), g);
  ExpectNear(q, {-2, -1, 0, 0.5, 1.75}, 1e-12, "values");
  q.sum().backward();
  ExpectNear(v.grad(), {0, 1, 1, 1, 0}, 1e-12, "dv");
  // -8 + 0.4 - 0.2 - 0.4 + 7 = -1.2
  EXPECT_NEAR(s.grad().item<double>(), -1.2 * g, 1e-9);
}

TEST(Lsq, TwoAndFourBitActivationsValuesAndGradients) {
  // 2 bits, s = 0.5: u = -2, 0.4, 1.4, 2.4, 4 -> clip [0, 3] -> round -> 0, 0, 1, 2, 3.
  const torch::Tensor x = D({-1, 0.2, 0.7, 1.2, 2.0}).requires_grad_();
  const torch::Tensor s = Scalar(0.5);
  const torch::Tensor q = LsqQuantize(x, s, LsqActivationRange(2), 1.0);
  ExpectNear(q, {0, 0, 0.5, 1.0, 1.5}, 1e-12, "2-bit values");
  q.sum().backward();
  ExpectNear(x.grad(), {0, 1, 1, 1, 0}, 1e-12, "2-bit dx");
  // -Qn = 0 below, -0.4 three times inside, Qp = 3 above.
  EXPECT_NEAR(s.grad().item<double>(), 3 - 1.2, 1e-9);

  // 4 bits, s = 0.1: u = 3.3, 10, 20 -> clip [0, 15] -> round -> 3, 10, 15.
  const torch::Tensor x4 = D({0.33, 1.0, 2.0}).requires_grad_();
  const torch::Tensor s4 = Scalar(0.1);
  const torch::Tensor q4 = LsqQuantize(x4, s4, LsqActivationRange(4), 1.0);
  ExpectNear(q4, {0.3, 1.0, 1.5}, 1e-12, "4-bit values");
  q4.sum().backward();
  ExpectNear(x4.grad(), {1, 1, 0}, 1e-12, "4-bit dx");
  EXPECT_NEAR(s4.grad().item<double>(), -0.3 + 0 + 15, 1e-9);
}

TEST(Lsq, InitialStepIsTwiceMeanAbsOverRootQp) {
  EXPECT_NEAR(LsqInitialStep(torch::tensor({1.0f, -3.0f}), 1).item<float>(), 4.0, 1e-6);
  EXPECT_NEAR(LsqInitialStep(torch::tensor({0.5f, -0.5f, 1.0f, -1.0f}), 7).item<float>(),
              1.5 / std::sqrt(7.0), 1e-6);
  EXPECT_GT(LsqInitialStep(torch::zeros({4}), 3).item<float>(), 0);  // never a zero step
}

// The paper's step gradient is the derivative of the quantizer with the rounding offset
// round(u) - u held at its value (the straight-through round): check that by finite differences
// of s * (clip(v/s) + offset) at random points, 2 and 4 bits, weights and activations.
TEST(Lsq, StepGradientMatchesFiniteDifferencesOfTheStraightThroughQuantizer) {
  torch::manual_seed(3);
  for (const auto& [range, label] : {std::pair{LsqWeightRange(2), "w2"}, {LsqWeightRange(4), "w4"},
                                     {LsqActivationRange(2), "a2"}, {LsqActivationRange(4), "a4"}}) {
    const torch::Tensor v = torch::randn({257}, torch::kDouble);
    const torch::Tensor c = torch::randn({257}, torch::kDouble);
    const double s0 = 0.37;
    const torch::Tensor s = Scalar(s0);
    (LsqQuantize(v, s, range, 1.0) * c).sum().backward();
    const torch::Tensor u0 = torch::clamp(v / s0, -static_cast<double>(range.qn), static_cast<double>(range.qp));
    const torch::Tensor offset = torch::round(u0) - u0;
    const auto loss = [&](double sv) {
      const torch::Tensor u = torch::clamp(v / sv, -static_cast<double>(range.qn), static_cast<double>(range.qp));
      return ((u + offset) * sv * c).sum().item<double>();
    };
    EXPECT_NEAR(s.grad().item<double>(), FiniteDifference(loss, s0), 1e-5) << label;
  }
}

// Where every value is clipped the quantizer is s * (-Qn or Qp): differentiable in s, and the
// paper's gradient is its true derivative.
TEST(Lsq, StepGradientIsTheTrueDerivativeWhereClipped) {
  const torch::Tensor v = D({3, 5, -4, 9});
  const torch::Tensor c = D({1, -2, 0.5, 3});
  const torch::Tensor s = Scalar(0.5);
  (LsqQuantize(v, s, LsqWeightRange(2), 1.0) * c).sum().backward();
  const auto loss = [&](double sv) {
    return (LsqQuantize(v, torch::full({}, sv, torch::kDouble), LsqWeightRange(2), 1.0) * c)
        .sum()
        .item<double>();
  };
  EXPECT_NEAR(s.grad().item<double>(), FiniteDifference(loss, 0.5), 1e-6);
  EXPECT_NEAR(s.grad().item<double>(), 1 - 2 - 2 * 0.5 + 3, 1e-12);  // Qp, Qp, -Qn, Qp
}

// ---- PACT ----

TEST(Pact, TwoBitValuesAndGradients) {
  // alpha = 2, m = 3: y = 0, 0.5, 1.2, 2, 2; y*m/alpha = 0, 0.75, 1.8, 3, 3 -> round -> 0, 1, 2, 3, 3.
  const torch::Tensor x = D({-1, 0.5, 1.2, 2.0, 3.0}).requires_grad_();
  const torch::Tensor alpha = Scalar(2.0);
  const torch::Tensor q = PactActivation(x, alpha, 2);
  ExpectNear(q, {0, 2.0 / 3, 4.0 / 3, 2, 2}, 1e-12, "values");
  (q * D({1, 2, 3, 4, 5})).sum().backward();
  ExpectNear(x.grad(), {0, 2, 3, 0, 0}, 1e-12, "dx (0 <= x < alpha)");
  EXPECT_NEAR(alpha.grad().item<double>(), 4 + 5, 1e-12);  // x >= alpha
}

TEST(Pact, FourBitValuesAndGradients) {
  // alpha = 1.5, m = 15: y*m/alpha = 1, 7.7, 15 -> 1, 8, 15 -> * 0.1.
  const torch::Tensor x = D({0.1, 0.77, 1.6}).requires_grad_();
  const torch::Tensor alpha = Scalar(1.5);
  const torch::Tensor q = PactActivation(x, alpha, 4);
  ExpectNear(q, {0.1, 0.8, 1.5}, 1e-12, "values");
  q.sum().backward();
  ExpectNear(x.grad(), {1, 1, 0}, 1e-12, "dx");
  EXPECT_NEAR(alpha.grad().item<double>(), 1, 1e-12);
  ExpectNear(PactActivation(D({-1, 0.5, 40}), alpha, 32), {0, 0.5, 40}, 0, "32 bits: ReLU");
}

// The alpha gradient against finite differences: of the quantizer itself where every value is
// clipped (y_q = alpha there), and of clip(x, 0, alpha) plus the held rounding offset elsewhere.
TEST(Pact, AlphaGradientMatchesFiniteDifferences) {
  for (int bits : {2, 4}) {
    const torch::Tensor clipped = D({2.5, 3, 7});
    const torch::Tensor c = D({1, -2, 0.5});
    const torch::Tensor a = Scalar(2.0);
    (PactActivation(clipped, a, bits) * c).sum().backward();
    const auto loss = [&](double av) {
      return (PactActivation(clipped, torch::full({}, av, torch::kDouble), bits) * c).sum().item<double>();
    };
    EXPECT_NEAR(a.grad().item<double>(), FiniteDifference(loss, 2.0), 1e-6) << bits;

    torch::manual_seed(bits);
    const torch::Tensor x = torch::randn({301}, torch::kDouble) * 2;
    const torch::Tensor cx = torch::randn({301}, torch::kDouble);
    const double a0 = 1.3;
    const torch::Tensor a2 = Scalar(a0);
    (PactActivation(x, a2, bits) * cx).sum().backward();
    const torch::Tensor y0 = torch::clamp(x, 0.0, a0);
    const torch::Tensor offset = PactActivation(x, torch::full({}, a0, torch::kDouble), bits) - y0;
    const auto ste = [&](double av) { return ((torch::clamp(x, 0.0, av) + offset) * cx).sum().item<double>(); };
    EXPECT_NEAR(a2.grad().item<double>(), FiniteDifference(ste, a0), 1e-5) << bits;
  }
}

// ---- DoReFa ----

TEST(Dorefa, TwoAndFourBitWeightValues) {
  // tanh(w) / (2 max|tanh w|) + 0.5 = 0, 0.3704, 0.5654, 0.8034; * 3 -> 0, 1, 2, 2; * 15 -> 0, 6, 8, 12.
  const torch::Tensor w = D({-1.0, -0.2, 0.1, 0.5});
  ExpectNear(DorefaWeight(w, 2), {-1, -1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-12, "2 bits");
  ExpectNear(DorefaWeight(w, 4), {-1, -0.2, 1.0 / 15, 0.6}, 1e-12, "4 bits");
  ExpectNear(DorefaWeight(w, 32), {-1.0, -0.2, 0.1, 0.5}, 0, "32 bits");
  // 1 bit: sign(w) * mean|w| (mean|w| = 0.45), gradient passed everywhere.
  const torch::Tensor w1 = D({-1.0, -0.2, 0.1, 0.5}).requires_grad_();
  const torch::Tensor q1 = DorefaWeight(w1, 1);
  ExpectNear(q1, {-0.45, -0.45, 0.45, 0.45}, 1e-12, "1 bit");
  (q1 * D({1, 2, 3, 4})).sum().backward();
  ExpectNear(w1.grad(), {1, 2, 3, 4}, 0, "1-bit gradient");
}

// With the round straight-through, the output is tanh(w) / max|tanh w| plus a constant: its
// gradient by hand is c_j (1 - t_j^2) / M, plus (1 - t_k^2) / M^2 * sum_i c_i t_i at the arg max
// k (here w_0 = -1, so M = -t_0).
TEST(Dorefa, WeightGradientByHandAndFiniteDifferences) {
  const std::vector<double> wv = {-1.0, -0.2, 0.1, 0.5}, cv = {1, 2, 3, 4};
  std::vector<double> t;
  for (double x : wv) t.push_back(std::tanh(x));
  const double m = -t[0];
  double sum_ct = 0;
  for (size_t i = 0; i < t.size(); ++i) sum_ct += cv[i] * t[i];
  std::vector<double> want;
  for (size_t j = 0; j < t.size(); ++j) want.push_back(cv[j] * (1 - t[j] * t[j]) / m);
  want[0] += (1 - t[0] * t[0]) / (m * m) * sum_ct;
  for (int bits : {2, 4}) {
    const torch::Tensor w = D(wv).requires_grad_();
    (DorefaWeight(w, bits) * D(cv)).sum().backward();
    ExpectNear(w.grad(), want, 1e-9, bits == 2 ? "2 bits" : "4 bits");
    // Finite differences of the straight-through form, one weight at a time.
    const torch::Tensor offset = DorefaWeight(D(wv), bits) - torch::tanh(D(wv)) / m;
    for (size_t j = 0; j < wv.size(); ++j) {
      const auto loss = [&](double x) {
        std::vector<double> w2 = wv;
        w2[j] = x;
        const torch::Tensor tt = torch::tanh(D(w2));
        return ((tt / tt.abs().max() + offset) * D(cv)).sum().item<double>();
      };
      EXPECT_NEAR(Values(w.grad())[j], FiniteDifference(loss, wv[j]), 1e-5) << bits << " " << j;
    }
  }
}

// ---- The networks ----

std::map<std::string, torch::Tensor> Snapshot(Network& net) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : net.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

int CountNamed(Network& net, const std::string& suffix) {
  int n = 0;
  for (const auto& p : net.named_parameters()) {
    const std::string& k = p.key();
    if (k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) ++n;
  }
  return n;
}

std::shared_ptr<Network> LeNet(QuantScheme scheme, int wbits, int abits) {
  auto net = BuildNetwork("lenet5", 1.0, InputShape{1, 28, 28, 10}, Precision{wbits, abits, 0, scheme});
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

// One SGD step (no weight decay) on a batch changes every parameter of every scheme.
TEST(SchemeNetworks, OneTrainingStepChangesEveryTrainableParameter) {
  for (QuantScheme scheme : {QuantScheme::kWrpn, QuantScheme::kLsq, QuantScheme::kPact, QuantScheme::kDorefa}) {
    for (auto [wb, ab] : {std::pair{2, 2}, {4, 4}}) {
      SCOPED_TRACE(std::string(QuantSchemeName(scheme)) + " " + std::to_string(wb) + "/" + std::to_string(ab));
      torch::manual_seed(1);
      auto net = LeNet(scheme, wb, ab);
      net->train();
      const torch::Tensor x = torch::randn({32, 1, 28, 28});
      const torch::Tensor y = torch::randint(0, 10, {32});
      {
        torch::NoGradGuard no_grad;
        net->forward(x);  // LSQ steps take their initial values here
      }
      if (scheme == QuantScheme::kPact) {
        // alpha starts at 10, beyond what BN outputs reach (so only its L2 term moves it; see
        // the next test): put it where the batch reaches it, so its loss gradient is non-zero.
        torch::NoGradGuard no_grad;
        for (auto& p : net->named_parameters())
          if (p.key().find("alpha") != std::string::npos) p.value().fill_(1.0);
      }
      if (scheme == QuantScheme::kLsq) {
        EXPECT_EQ(CountNamed(*net, ".step"), 3 + 2);  // conv2, fc1, fc2 weights; act2, act3
        EXPECT_FALSE(QuantizerInitPending(*net));
      }
      if (scheme == QuantScheme::kPact) EXPECT_EQ(CountNamed(*net, ".alpha"), 2);
      const auto before = Snapshot(*net);
      torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
      opt.zero_grad();
      torch::cross_entropy_loss(net->forward(x), y).backward();
      opt.step();
      for (const auto& p : net->named_parameters()) {
        EXPECT_FALSE(torch::equal(before.at(p.key()), p.value().detach())) << p.key() << " did not change";
      }
    }
  }
}

// PACT's L2 on alpha: through the optimizer's weight decay, alpha shrinks even without a loss
// gradient (every BN output below 10).
TEST(SchemeNetworks, PactAlphaDecaysUnderItsL2Term) {
  torch::manual_seed(2);
  auto net = LeNet(QuantScheme::kPact, 2, 2);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).weight_decay(0.01));
  opt.zero_grad();
  torch::cross_entropy_loss(net->forward(torch::randn({16, 1, 28, 28})), torch::randint(0, 10, {16})).backward();
  opt.step();
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("alpha") == std::string::npos) continue;
    EXPECT_NEAR(p.value().item<float>(), kPactInitialAlpha * (1 - 0.1 * 0.01), 1e-5) << p.key();
  }
}

// LSQ's steps start at 2 mean|v| / sqrt(Qp) of the weights (and of the first batch's ReLU'd
// activations) on the first forward, once.
TEST(SchemeNetworks, LsqStepsStartAtThePapersValueOnce) {
  torch::manual_seed(4);
  auto net = LeNet(QuantScheme::kLsq, 4, 2);
  EXPECT_TRUE(QuantizerInitPending(*net));
  net->forward(torch::randn({8, 1, 28, 28}));
  EXPECT_FALSE(QuantizerInitPending(*net));
  const auto params = net->named_parameters();
  const torch::Tensor w = params["body.conv2.weight"];
  EXPECT_NEAR(params["body.conv2.step"].item<float>(), 2 * w.abs().mean().item<float>() / std::sqrt(7.0), 1e-6);
  const float act_step = params["body.act2.step"].item<float>();
  net->forward(torch::randn({8, 1, 28, 28}) * 5);
  EXPECT_EQ(params["body.act2.step"].item<float>(), act_step);  // not re-initialised
}

// The first and last layers stay FP32 under every scheme, and 1-bit LSQ weights are BWN's.
TEST(SchemeNetworks, FirstLastFp32AndOneBitLsqIsBinaryWeights) {
  auto net = LeNet(QuantScheme::kLsq, 1, 2);
  EXPECT_EQ(CountNamed(*net, ".step"), 2);  // activations only
  for (const auto& [name, w] : QuantizedWeights(*net)) {
    const auto distinct = std::get<0>(at::_unique(w.flatten()));
    if (name == "body.conv1" || name == "body.fc3") EXPECT_GT(distinct.numel(), 2) << name;
    else EXPECT_EQ(distinct.numel(), 2) << name;
  }
}

}  // namespace
}  // namespace wrpn::trainer
