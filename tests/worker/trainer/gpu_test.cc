// CUDA tests (ctest label `gpu`): each skips cleanly where CUDA is not available.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>

#include "worker/trainer/communicator.h"
#include "worker/trainer/launcher.h"
#include "worker/trainer/networks.h"
#include "worker/trainer/quantizer.h"
#include "worker/trainer/trainer.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

void Autocast(bool on) {
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(on);
#endif
  if (!on) at::autocast::clear_cache();
}

// One bf16-autocast, channels-last SGD step on CUDA for every network and a few precisions.
TEST_F(Gpu, TrainingStepForEachNetworkWithAutocastAndChannelsLast) {
  for (const auto& name : KnownNetworks()) {
    InputShape in = DefaultInput(name);
    if (in.height > 64) in = InputShape{3, name == "alexnet" ? 96 : 64, name == "alexnet" ? 96 : 64, 10};
    for (auto [wb, ab] : {std::pair{32, 32}, std::pair{2, 4}, std::pair{1, 1}}) {
      auto net = BuildNetwork(name, 2.0, in, Precision{wb, ab, 0});
      ASSERT_TRUE(net.ok()) << net.status();
      (*net)->to(torch::kCUDA);
      for (auto& p : (*net)->parameters())
        if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
      std::vector<torch::Tensor> before;
      for (const auto& p : (*net)->parameters()) before.push_back(p.detach().clone());
      torch::optim::SGD opt((*net)->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
      const torch::Tensor x = torch::randn({8, in.channels, in.height, in.width}, torch::kCUDA)
                                  .contiguous(at::MemoryFormat::ChannelsLast);
      const torch::Tensor y = torch::randint(0, in.classes, {8}, torch::TensorOptions(torch::kCUDA).dtype(torch::kLong));
      Autocast(true);
      const torch::Tensor logits = (*net)->forward(x);
      Autocast(false);
      EXPECT_EQ(logits.scalar_type(), torch::kBFloat16) << name;
      const torch::Tensor loss = torch::cross_entropy_loss(logits.to(torch::kFloat), y);
      loss.backward();
      opt.step();
      EXPECT_TRUE(std::isfinite(loss.item<float>())) << name;
      const auto after = (*net)->parameters();
      int changed = 0;
      for (size_t i = 0; i < after.size(); ++i) changed += !torch::equal(before[i], after[i]);
      EXPECT_EQ(changed, static_cast<int>(after.size())) << name << " w" << wb << " a" << ab;
    }
  }
}

// The CUDA activation quantizer (fused kernel where built) agrees with the ATen formulation in
// float32 and bf16, values and gradients.
TEST_F(Gpu, ActivationQuantizerMatchesAtenOnCuda) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (int bits : {1, 2, 4, 8}) {
      const torch::Tensor base = (torch::rand({4096}, torch::kCUDA) * 1.6 - 0.3).to(dtype);
      torch::Tensor a = base.clone().requires_grad_(true), b = base.clone().requires_grad_(true);
      const torch::Tensor qa = QuantizeActivation(a, bits);
      const torch::Tensor qb = QuantizeActivationAten(b.to(torch::kFloat), bits).to(dtype);
      // Exact ties (x * m ending in .5, common in bf16) are rounded half-to-even by our kernel and
      // by fake_quantize's float reciprocal in ATen; compare away from them.
      const double m = std::pow(2.0, bits) - 1;
      const torch::Tensor xm = base.to(torch::kFloat).clamp(0, 1) * m;
      const torch::Tensor away = ((xm - xm.floor()) - 0.5).abs() > 1e-3;
      const torch::Tensor diff = (qa.to(torch::kFloat) - qb.to(torch::kFloat)).abs().masked_select(away);
      EXPECT_LE(diff.max().item<float>(), dtype == torch::kFloat ? 1e-6 : 1e-2) << "bits " << bits;
      (qa.to(torch::kFloat) * 3).sum().backward();
      (qb.to(torch::kFloat) * 3).sum().backward();
      EXPECT_TRUE(torch::equal(a.grad().to(torch::kFloat), b.grad().to(torch::kFloat))) << "bits " << bits;
    }
  }
  std::cout << "fused CUDA quantizer kernel in this build: " << (HaveFusedCudaQuantizer() ? "yes" : "no") << "\n";
}

TEST_F(Gpu, WeightQuantizerIsTheSameOnCpuAndCuda) {
  torch::manual_seed(0);
  const torch::Tensor w = torch::randn({64, 64, 3, 3}) * 0.05;
  for (int bits : {1, 2, 4, 8}) {
    const torch::Tensor cpu = QuantizeWeight(w, bits, AdaptiveWeightScale(w, bits));
    const torch::Tensor wc = w.to(torch::kCUDA);
    const torch::Tensor gpu = QuantizeWeightAdaptive(wc, bits).cpu();  // fused kernels where built
    // The same levels; a scale summed in another order may move an element sitting on a rounding
    // boundary by one level.
    const torch::Tensor diff = (cpu - gpu).abs();
    EXPECT_LT(diff.gt(1e-6).to(torch::kFloat).mean().item<float>(), 1e-3) << bits;
    const double step = AdaptiveWeightScale(w, bits).item<double>() / std::max<double>(1, WeightLevels(bits));
    EXPECT_LE(diff.max().item<float>(), step * 1.001 + 1e-6) << bits;
  }
}

TEST_F(Gpu, WeightQuantizerGradientIsMaskedOnCuda) {
  torch::manual_seed(1);
  const torch::Tensor base = torch::randn({512, 64}) * 0.05;
  for (int bits : {2, 4, 8}) {
    torch::Tensor a = base.to(torch::kCUDA).requires_grad_(true);
    torch::Tensor b = base.clone().requires_grad_(true);
    (QuantizeWeightAdaptive(a, bits) * 2).sum().backward();
    (QuantizeWeight(b, bits, AdaptiveWeightScale(b, bits)) * 2).sum().backward();
    EXPECT_LT((a.grad().cpu() - b.grad()).abs().gt(0).to(torch::kFloat).mean().item<float>(), 1e-3) << bits;
  }
}

TEST_F(Gpu, NcclCommunicatorWithWorldSizeOne) {
  if (!HaveNccl()) GTEST_SKIP() << "built without NCCL";
  DistributedOptions o;
  o.master_port = PickFreePort();
  auto comm = Connect(o, /*cuda=*/true);
  ASSERT_TRUE(comm.ok()) << comm.status();
  EXPECT_EQ((*comm)->backend(), "nccl");
  torch::Tensor t = torch::arange(10, torch::TensorOptions(torch::kCUDA).dtype(torch::kFloat));
  const torch::Tensor want = t.clone();
  (*comm)->AllReduceSum(t)->Wait();
  EXPECT_TRUE(torch::equal(t, want));
  (*comm)->Broadcast(t, 0);
  EXPECT_TRUE(torch::equal(t, want));
  (*comm)->Barrier();
}

TrialConfig Tiny(const std::string& device, const std::string& dir) {
  TrialConfig c;
  c.network = "resnet20";
  c.wbits = 2;
  c.abits = 4;
  c.dataset.kind = "synthetic";
  c.dataset.train_size = 256;
  c.dataset.test_size = 64;
  c.batch_size = 32;
  c.epochs = 2;
  c.device = device;
  c.amp = device != "cpu";
  c.channels_last = device != "cpu";
  c.checkpoint_dir = dir;
  return c;
}

int RunQuiet(TrialConfig c, std::string* last_event) {
  return RunTrial(c, [&](const nlohmann::json& e) { *last_event = e.dump(); });
}

// A checkpoint written on the GPU resumes on the CPU, and the other way round.
TEST_F(Gpu, CheckpointsMoveBetweenCudaAndCpu) {
  const fs::path dir = fs::temp_directory_path() / ("wrpn_gpu_ck_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::string last;
  TrialConfig gpu = Tiny("cuda:0", (dir / "a").string());
  gpu.stop_after_epochs = 1;
  ASSERT_EQ(RunQuiet(gpu, &last), kExitInterrupted) << last;
  TrialConfig cpu = Tiny("cpu", (dir / "a").string());
  cpu.resume = true;
  ASSERT_EQ(RunQuiet(cpu, &last), kExitOk) << last;
  EXPECT_NE(last.find("\"finished\""), std::string::npos);

  TrialConfig cpu2 = Tiny("cpu", (dir / "b").string());
  cpu2.stop_after_epochs = 1;
  ASSERT_EQ(RunQuiet(cpu2, &last), kExitInterrupted) << last;
  TrialConfig gpu2 = Tiny("cuda:0", (dir / "b").string());
  gpu2.resume = true;
  ASSERT_EQ(RunQuiet(gpu2, &last), kExitOk) << last;
  EXPECT_NE(last.find("\"finished\""), std::string::npos);
  fs::remove_all(dir);
}

// gpu_memory_gb (issue #19): a cap far below what the trial needs fails it as `resources`
// (exit 6) naming the cap; a roomy cap lets it finish. The cap is LibTorch's per-process memory
// fraction, so each test runs its trial in a child process (the fraction cannot be undone).
TEST_F(Gpu, AGpuMemoryCapTooSmallFailsTheTrialAsResources) {
  const fs::path dir = fs::temp_directory_path() / ("wrpn_gpu_cap_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto run_capped = [&](int64_t cap, const std::string& sub, int width) {
    TrialConfig c = Tiny("cuda:0", (dir / sub).string());
    c.width = width;
    c.batch_size = 256;
    c.dataset.train_size = 1024;
    RunOptions o;
    o.gpu_memory_bytes = cap;
    std::string last;
    const int code = RunTrial(c, [&](const nlohmann::json& e) { last = e.dump(); }, o);
    std::cerr << "capped run: " << last << "\n";
    return std::make_pair(code, last);
  };
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const auto r = run_capped(8LL << 20, "small", 4);  // 8 MiB
        const bool ok = r.first == kExitResources &&
                        r.second.find("\"resources\"") != std::string::npos &&
                        r.second.find("resources.gpu_memory_gb") != std::string::npos;
        std::_Exit(ok ? 0 : 100 + r.first);
      },
      testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        const auto r = run_capped(4LL << 30, "roomy", 1);  // 4 GiB
        std::_Exit(r.first == kExitOk ? 0 : 100 + r.first);
      },
      testing::ExitedWithCode(0), "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wrpn::trainer
