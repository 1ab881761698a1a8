// GradientReducer and BroadcastTensors against the in-process FakeCommunicator (ranks are
// threads), without sockets: gradients are averaged exactly, every rank issues the same sequence
// of bucketed all-reduces, and a broadcast gives every rank rank 0's parameters.
#include "worker/trainer/reducer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "tests/fakes/fake_communicator.h"

namespace wrpn::trainer {
namespace {

torch::nn::Sequential SmallNet() {
  return torch::nn::Sequential(torch::nn::Linear(6, 16), torch::nn::Tanh(), torch::nn::Linear(16, 8),
                               torch::nn::Tanh(), torch::nn::Linear(8, 3));
}

TEST(GradientReducer, AveragesGradientsLikeOneRankWithTheWholeBatch) {
  constexpr int kWorld = 2;
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({8, 6});
  const torch::Tensor y = torch::randint(0, 3, {8});
  // Reference: one process, the whole batch.
  torch::manual_seed(11);
  auto ref = SmallNet();
  torch::cross_entropy_loss(ref->forward(x), y).backward();

  auto hub = std::make_shared<FakeCommunicatorHub>(kWorld);
  std::vector<torch::nn::Sequential> nets;
  for (int r = 0; r < kWorld; ++r) {
    torch::manual_seed(11);
    nets.push_back(SmallNet());
  }
  size_t buckets[kWorld] = {};
  std::vector<std::thread> ranks;
  for (int r = 0; r < kWorld; ++r) {
    ranks.emplace_back([&, r] {
      FakeCommunicator comm(hub, r);
      // 256-byte buckets: the 3 layers' parameters spread over several all-reduces.
      GradientReducer reducer(nets[r]->parameters(), comm, 256);
      buckets[r] = reducer.num_buckets();
      reducer.Prepare();
      torch::cross_entropy_loss(nets[r]->forward(x.narrow(0, 4 * r, 4)), y.narrow(0, 4 * r, 4)).backward();
      reducer.Finish();
    });
  }
  for (auto& t : ranks) t.join();
  EXPECT_GT(buckets[0], 2u);
  EXPECT_EQ(hub->Calls(0), hub->Calls(1));
  EXPECT_EQ(hub->Calls(0).size(), buckets[0]);
  const auto want = ref->parameters();
  for (int r = 0; r < kWorld; ++r) {
    const auto got = nets[r]->parameters();
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_LE((got[i].grad() - want[i].grad()).abs().max().item<float>(), 1e-6) << "rank " << r << " param " << i;
    }
  }
}

TEST(GradientReducer, BroadcastGivesEveryRankRankZerosParameters) {
  auto hub = std::make_shared<FakeCommunicatorHub>(3);
  std::vector<torch::nn::Sequential> nets;
  for (int r = 0; r < 3; ++r) {
    torch::manual_seed(100 + r);  // different on every rank
    nets.push_back(SmallNet());
  }
  std::vector<torch::Tensor> rank0;
  for (const auto& p : nets[0]->parameters()) rank0.push_back(p.detach().clone());
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back([&, r] {
      FakeCommunicator comm(hub, r);
      BroadcastTensors(nets[r]->parameters(), comm, 0);
    });
  }
  for (auto& t : ranks) t.join();
  for (int r = 1; r < 3; ++r) {
    const auto p = nets[r]->parameters();
    for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(torch::equal(p[i], rank0[i])) << r << " " << i;
  }
}

}  // namespace
}  // namespace wrpn::trainer
