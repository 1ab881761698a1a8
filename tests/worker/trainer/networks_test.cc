#include "worker/trainer/networks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/network_spec.h"
#include "worker/trainer/optim.h"

namespace wrpn::trainer {
namespace {

int64_t Params(const std::shared_ptr<Network>& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

// Forward shapes at the networks' own input size, and the modules agree with the description in
// common/ (parameters and FMAs per image), for 1x, 1.3x and 2x.
TEST(Networks, ForwardShapesParamsAndFmasMatchDescription) {
  torch::NoGradGuard no_grad;
  for (const auto& name : KnownNetworks()) {
    for (double width : {1.0, 1.3, 2.0}) {
      const InputShape in = DefaultInput(name);
      auto net = BuildNetwork(name, width, in, Precision{2, 4, 0});
      ASSERT_TRUE(net.ok()) << net.status();
      auto spec = DescribeNetwork(name, width, in);
      ASSERT_TRUE(spec.ok());
      (*net)->eval();
      FmaCounter counter;
      const torch::Tensor out = (*net)->forward(torch::randn({1, in.channels, in.height, in.width}));
      EXPECT_EQ(out.sizes(), torch::IntArrayRef({1, in.classes})) << name << " " << width;
      EXPECT_EQ(counter.fmas(), spec->Fmas()) << name << " " << width;
      EXPECT_EQ(Params(*net), spec->ParamCount()) << name << " " << width;
    }
  }
}

TEST(Networks, InputChannelsAndClassesAreParameters) {
  torch::NoGradGuard no_grad;
  auto net = BuildNetwork("resnet20", 2.0, InputShape{3, 32, 32, 100}, Precision{});
  ASSERT_TRUE(net.ok());
  (*net)->eval();
  EXPECT_EQ((*net)->forward(torch::randn({2, 3, 32, 32})).sizes(), torch::IntArrayRef({2, 100}));
  auto bad = BuildNetwork("lenet5", 1.0, InputShape{}, Precision{0, 32, 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("wbits"), std::string::npos);
}

struct Small {
  const char* net;
  InputShape input;
};

// One SGD step (no weight decay, so only gradients move weights) changes every trainable
// parameter tensor, for every precision pair of the paper's grid.
TEST(Networks, OneTrainingStepChangesEveryParameterForEveryPrecisionPair) {
  const Small small[] = {{"lenet5", {1, 28, 28, 10}}, {"resnet20", {1, 28, 28, 10}}};
  const int bits[] = {32, 8, 4, 2, 1};
  for (const auto& s : small) {
    for (int wb : bits) {
      for (int ab : bits) {
        torch::manual_seed(wb * 100 + ab);
        auto net = BuildNetwork(s.net, 1.0, s.input, Precision{wb, ab, 0});
        ASSERT_TRUE(net.ok());
        std::vector<torch::Tensor> before;
        for (const auto& p : (*net)->parameters()) before.push_back(p.detach().clone());
        torch::optim::SGD opt((*net)->parameters(), torch::optim::SGDOptions(0.1));
        const torch::Tensor x = torch::randn({16, 1, 28, 28});
        const torch::Tensor y = torch::randint(0, 10, {16});
        torch::cross_entropy_loss((*net)->forward(x), y).backward();
        opt.step();
        const auto after = (*net)->named_parameters();
        for (size_t i = 0; i < after.size(); ++i) {
          EXPECT_FALSE(torch::equal(before[i], after[i].value()))
              << s.net << " w" << wb << " a" << ab << ": " << after[i].key() << " did not change";
        }
      }
    }
  }
}

// The ImageNet networks train too (one step, smaller inputs to keep the test fast).
TEST(Networks, ImageNetNetworksTakeATrainingStep) {
  const Small small[] = {{"resnet18", {3, 32, 32, 10}},
                         {"resnet34", {3, 32, 32, 10}},
                         {"resnet50", {3, 32, 32, 10}},
                         {"alexnet", {3, 96, 96, 10}},
                         {"inception_bn", {3, 64, 64, 10}}};
  for (const auto& s : small) {
    for (auto [wb, ab] : {std::pair{32, 32}, std::pair{2, 4}, std::pair{1, 1}}) {
      torch::manual_seed(1);
      auto net = BuildNetwork(s.net, 1.0, s.input, Precision{wb, ab, 0});
      ASSERT_TRUE(net.ok()) << net.status();
      std::vector<torch::Tensor> before;
      for (const auto& p : (*net)->parameters()) before.push_back(p.detach().clone());
      torch::optim::SGD opt((*net)->parameters(), torch::optim::SGDOptions(0.1));
      const torch::Tensor x = torch::randn({4, 3, s.input.height, s.input.width});
      torch::cross_entropy_loss((*net)->forward(x), torch::randint(0, 10, {4})).backward();
      opt.step();
      const auto after = (*net)->named_parameters();
      int unchanged = 0;
      for (size_t i = 0; i < after.size(); ++i) {
        if (torch::equal(before[i], after[i].value())) {
          ++unchanged;
          ADD_FAILURE() << s.net << " w" << wb << " a" << ab << ": " << after[i].key();
        }
      }
      EXPECT_EQ(unchanged, 0);
    }
  }
}

TEST(Networks, FirstAndLastLayersStayFullPrecision) {
  for (const auto& name : {"lenet5", "resnet20"}) {
    auto net = BuildNetwork(name, 1.0, InputShape{}, Precision{1, 1, 0});
    ASSERT_TRUE(net.ok());
    const auto weights = QuantizedWeights(**net);
    ASSERT_GE(weights.size(), 3u);
    for (size_t i = 0; i < weights.size(); ++i) {
      const int64_t distinct = std::get<0>(at::_unique(weights[i].second.flatten())).numel();
      if (i == 0 || i + 1 == weights.size()) {
        EXPECT_GT(distinct, 2) << name << " " << weights[i].first << " must stay FP32";
      } else {
        EXPECT_EQ(distinct, 2) << name << " " << weights[i].first << " must be binary";
      }
    }
  }
}

}  // namespace
}  // namespace wrpn::trainer

namespace wrpn::trainer {
namespace {

// ForeachSgdStep (used on CUDA) is the same update as torch::optim::SGD::step (used on the CPU),
// with the same optimizer state, so checkpoints move between them.
TEST(Optim, ForeachSgdMatchesTorchSgd) {
  for (bool nesterov : {false, true}) {
    torch::manual_seed(5);
    auto a = BuildNetwork("lenet5", 1.0, InputShape{}, Precision{2, 4, 0});
    torch::manual_seed(5);
    auto b = BuildNetwork("lenet5", 1.0, InputShape{}, Precision{2, 4, 0});
    ASSERT_TRUE(a.ok() && b.ok());
    auto opts = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(nesterov).weight_decay(5e-4);
    torch::optim::SGD oa((*a)->parameters(), opts), ob((*b)->parameters(), opts);
    for (int step = 0; step < 3; ++step) {
      torch::manual_seed(100 + step);
      const torch::Tensor x = torch::randn({16, 1, 28, 28});
      const torch::Tensor y = torch::randint(0, 10, {16});
      for (auto [net, opt, foreach] : {std::tuple{*a, &oa, false}, std::tuple{*b, &ob, true}}) {
        opt->zero_grad();
        torch::cross_entropy_loss(net->forward(x), y).backward();
        if (foreach) ForeachSgdStep(*opt); else opt->step();
      }
    }
    const auto pa = (*a)->parameters(), pb = (*b)->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_LE((pa[i] - pb[i]).abs().max().item<float>(), 1e-6) << i << " nesterov " << nesterov;
    }
    EXPECT_EQ(oa.state().size(), ob.state().size());
  }
}

}  // namespace
}  // namespace wrpn::trainer
