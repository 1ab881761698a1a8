// Training throughput of the WRPN trainer on this machine, and the cost of quantization.
// Measures images/s of full training steps (forward, backward, SGD with momentum) on synthetic
// data already in memory, median over timed steps after warm-up, for:
//   ResNet-20 (28x28x1, batch 128) at 1x 32/32, 2x 32/32 and 2x W2A4,
// and prints the quantization overhead ratio (2x W2A4 step time / 2x 32/32 step time).
// Usage: train_bench [--steps N] [--warmup N] [--batch N] [--network NAME] [--device cpu|cuda]
//                    [--amp] [--channels-last] [--json FILE]
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/network_spec.h"
#include "worker/trainer/networks.h"
#include "worker/trainer/optim.h"

namespace {

using namespace wrpn;
using namespace wrpn::trainer;

struct Config {
  const char* label;
  double width;
  int wbits, abits;
};

double MedianStepSeconds(Network& net, const torch::Tensor& x, const torch::Tensor& y,
                         torch::Device device, bool amp, int warmup, int steps) {
  torch::optim::SGD opt(net.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    torch::Tensor loss;
    {
#if TORCH_VERSION_MAJOR >= 2
      if (amp) {
        at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
        at::autocast::set_autocast_enabled(at::kCUDA, true);
      }
#endif
      loss = torch::cross_entropy_loss(net.forward(x).to(torch::kFloat), y);
#if TORCH_VERSION_MAJOR >= 2
      if (amp) {
        at::autocast::set_autocast_enabled(at::kCUDA, false);
        at::autocast::clear_cache();
      }
#endif
    }
    loss.backward();
    if (device.is_cuda()) {
      ForeachSgdStep(opt);  // what the trainer does on CUDA
    } else {
      opt.step();
    }
    if (device.is_cuda()) torch::cuda::synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 10, warmup = 3, batch = 128;
  double peak_flops = 790e12;  // the H100's measured dense bf16 rate (issue 10)
  std::string network = "resnet20", device_name = "cpu", json_path;
  bool amp = false, channels_last = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::cerr << flag << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--steps")) steps = std::stoi(next("--steps"));
    else if (!std::strcmp(argv[i], "--warmup")) warmup = std::stoi(next("--warmup"));
    else if (!std::strcmp(argv[i], "--batch")) batch = std::stoi(next("--batch"));
    else if (!std::strcmp(argv[i], "--network")) network = next("--network");
    else if (!std::strcmp(argv[i], "--device")) device_name = next("--device");
    else if (!std::strcmp(argv[i], "--json")) json_path = next("--json");
    else if (!std::strcmp(argv[i], "--peak-flops")) peak_flops = std::stod(next("--peak-flops"));
    else if (!std::strcmp(argv[i], "--amp")) amp = true;
    else if (!std::strcmp(argv[i], "--channels-last")) channels_last = true;
    else {
      std::cerr << "unknown flag " << argv[i] << "\n";
      return 2;
    }
  }
  if (steps < 1 || warmup < 0 || batch < 1) {
    std::cerr << "--steps and --batch must be >= 1, --warmup >= 0\n";
    return 2;
  }
  const torch::Device device(device_name);
  const InputShape input = DefaultInput(network);
  const Config configs[] = {{"1x 32/32", 1.0, 32, 32}, {"2x 32/32", 2.0, 32, 32}, {"2x W2A4", 2.0, 2, 4}};
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({batch, input.channels, input.height, input.width}).to(device);
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor y = torch::randint(0, input.classes, {batch}).to(device);
  std::cout << absl::StrFormat("%s %dx%dx%d batch %d on %s, %d intra-op threads, median of %d steps after %d warm-up\n",
                               network, input.channels, input.height, input.width, batch,
                               device.str(), torch::get_num_threads(), steps, warmup);
  nlohmann::json results = nlohmann::json::array();
  double fp32_2x = 0, q_2x = 0;
  for (const auto& c : configs) {
    auto net = BuildNetwork(network, c.width, input, Precision{c.wbits, c.abits, 0});
    if (!net.ok()) {
      std::cerr << net.status() << "\n";
      return 1;
    }
    (*net)->to(device);
    if (channels_last) {
      for (auto& p : (*net)->parameters())
        if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
    }
    const double s = MedianStepSeconds(**net, x, y, device, amp, warmup, steps);
    // Training FLOPs: 2 per FMA forward, twice that backward.
    auto spec = DescribeNetwork(network, c.width, input);
    const double flops = 6.0 * static_cast<double>(spec->Fmas()) * batch / s;
    const double mfu = flops / peak_flops;
    std::cout << absl::StrFormat("  %-9s  step %8.2f ms   %9.1f images/s   %7.1f TFLOP/s   MFU %5.1f%%\n",
                                 c.label, s * 1e3, batch / s, flops / 1e12, 100 * mfu);
    results.push_back({{"config", c.label}, {"step_ms", s * 1e3}, {"images_per_sec", batch / s},
                       {"tflops", flops / 1e12}, {"mfu", mfu}});
    if (c.width == 2.0 && c.wbits == 32) fp32_2x = s;
    if (c.width == 2.0 && c.wbits == 2) q_2x = s;
  }
  std::cout << absl::StrFormat("quantization overhead (2x W2A4 / 2x 32/32 step time): %.3f\n", q_2x / fp32_2x);
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"network", network}, {"batch", batch},
                                               {"device", device.str()}, {"results", results},
                                               {"overhead_ratio", q_2x / fp32_2x}}.dump(2);
  }
  return 0;
}
