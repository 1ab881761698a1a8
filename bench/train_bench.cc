// Training throughput of the WRPN trainer on this machine, and the cost of quantization.
// Measures images/s of full training steps (forward, backward, SGD with momentum) on synthetic
// data already in memory, median over timed steps after warm-up, for:
//   ResNet-20 (28x28x1, batch 128) at 1x 32/32, 2x 32/32 and 2x W2A4,
// and prints the quantization overhead ratio (2x W2A4 step time / 2x 32/32 step time).
// Checked (COUNTS/FAILED lines, bench/bench_report.h): every step ran on a full batch (images
// trained == steps x batch), every loss was finite and the weights changed. MFU (against
// --peak-flops, a GPU's rate) is printed on CUDA only.
// Usage: train_bench [--steps N] [--warmup N] [--batch N] [--threads N (CPU; default all cores)] [--network NAME] [--device cpu|cuda]
//                    [--amp] [--channels-last] [--json FILE]
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "bench/bench_report.h"
#include "common/network_spec.h"
#include "worker/trainer/networks.h"
#include "worker/trainer/optim.h"
#include "worker/trainer/quantizer.h"

namespace {

using namespace wrpn;
using namespace wrpn::trainer;

struct Config {
  const char* label;  // points into a string that outlives the run
  double width;
  int wbits, abits;
};

struct Timed {
  double median_s = 0;
  int64_t steps = 0, images = 0;  // what was trained, warm-up included
  bool finite = true;              // every loss
  bool changed = false;            // the weights moved
};

Timed MedianStepSeconds(Network& net, const torch::Tensor& x, const torch::Tensor& y,
                        torch::Device device, bool amp, int warmup, int steps) {
  torch::optim::SGD opt(net.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  const torch::Tensor before = net.parameters().front().detach().clone();
  Timed out;
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
    ++out.steps;
    out.images += x.size(0);
    if (i == 0 || i + 1 == warmup + steps) out.finite = out.finite && std::isfinite(loss.item<double>());
  }
  std::sort(times.begin(), times.end());
  out.median_s = times[times.size() / 2];
  out.changed = !torch::equal(before, net.parameters().front().detach());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 10, warmup = 3, batch = 128, threads = 0;
  double peak_flops = 790e12;  // the H100's measured dense bf16 rate (issue 10)
  bool micro = false;          // time the quantizers alone against ReLU
  std::string configs_arg;     // e.g. "2:32:32,2:2:4" (width:wbits:abits); default: the three below
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
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(next("--threads"));
    else if (!std::strcmp(argv[i], "--network")) network = next("--network");
    else if (!std::strcmp(argv[i], "--device")) device_name = next("--device");
    else if (!std::strcmp(argv[i], "--json")) json_path = next("--json");
    else if (!std::strcmp(argv[i], "--peak-flops")) peak_flops = std::stod(next("--peak-flops"));
    else if (!std::strcmp(argv[i], "--configs")) configs_arg = next("--configs");
    else if (!std::strcmp(argv[i], "--micro")) micro = true;
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
  if (device.is_cpu()) {
    torch::set_num_threads(threads > 0 ? threads
                                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  const InputShape input = DefaultInput(network);
  if (micro) {
    // One ResNet-20 2x first-stage activation map at batch 128.
    const torch::Tensor base = torch::randn({batch, 32, 28, 28}).to(device);
    auto time = [&](const char* label, auto fn) {
      std::vector<double> t;
      for (int i = 0; i < warmup + steps; ++i) {
        torch::Tensor a = base.clone().requires_grad_(true);
        const auto t0 = std::chrono::steady_clock::now();
        fn(a).sum().backward();
        if (device.is_cuda()) torch::cuda::synchronize();
        if (i >= warmup) t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(t.begin(), t.end());
      std::cout << absl::StrFormat("  %-28s %8.2f ms (forward + backward + sum)\n", label, t[t.size() / 2] * 1e3);
    };
    time("relu", [](const torch::Tensor& a) { return torch::relu(a); });
    time("QuantizeActivation 4 bits", [](const torch::Tensor& a) { return QuantizeActivation(a, 4); });
    time("QuantizeActivationAten 4 bits", [](const torch::Tensor& a) { return QuantizeActivationAten(a, 4); });
    {
      torch::NoGradGuard ng;
      for (const char* which : {"relu fwd", "quant fwd"}) {
        std::vector<double> t;
        for (int i = 0; i < 10; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          torch::Tensor y = std::string(which) == "relu fwd" ? torch::relu(base) : QuantizeActivation(base, 4);
          t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(t.begin(), t.end());
        std::cout << absl::StrFormat("  %-28s %8.2f ms\n", which, t[5] * 1e3);
      }
    }
    wrpn::bench::Report r("train_bench", "micro");
    return r.Text("device", device.str()).Count("batch", batch).Count("timed", steps).Finish() ? 0 : 1;
  }
  std::vector<Config> configs = {{"1x 32/32", 1.0, 32, 32}, {"2x 32/32", 2.0, 32, 32}, {"2x W2A4", 2.0, 2, 4}};
  std::vector<std::string> labels;
  labels.reserve(64);  // Config keeps c_str() pointers
  if (!configs_arg.empty()) {
    configs.clear();
    std::istringstream in(configs_arg);
    for (std::string item; std::getline(in, item, ',');) {
      double w = 0;
      int wb = 0, ab = 0;
      char c1 = 0, c2 = 0;
      std::istringstream one(item);
      if (!(one >> w >> c1 >> wb >> c2 >> ab) || c1 != ':' || c2 != ':') {
        std::cerr << "--configs: expected width:wbits:abits items, got '" << item << "'\n";
        return 2;
      }
      labels.push_back(absl::StrFormat("%gx W%dA%d", w, wb, ab));
      configs.push_back({labels.back().c_str(), w, wb, ab});
    }
  }
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({batch, input.channels, input.height, input.width}).to(device);
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor y = torch::randint(0, input.classes, {batch}).to(device);
  std::cout << absl::StrFormat("%s %dx%dx%d batch %d on %s, %d intra-op threads, median of %d steps after %d warm-up\n",
                               network, input.channels, input.height, input.width, batch,
                               device.str(), torch::get_num_threads(), steps, warmup);
  nlohmann::json results = nlohmann::json::array();
  double fp32_2x = 0, q_2x = 0;
  wrpn::bench::Report report("train_bench", "train");
  report.Text("network", network).Text("device", device.str()).Count("batch", batch)
      .Count("configs", static_cast<int64_t>(configs.size()));
  int64_t steps_run = 0, images = 0;
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
    const Timed t = MedianStepSeconds(**net, x, y, device, amp, warmup, steps);
    const double s = t.median_s;
    steps_run += t.steps;
    images += t.images;
    report.Expect(t.images == static_cast<int64_t>(warmup + steps) * batch,
                  absl::StrFormat("%s: images trained != steps x batch", c.label))
        .Expect(t.finite, absl::StrFormat("%s: a loss was not finite", c.label))
        .Expect(t.changed, absl::StrFormat("%s: the weights did not change", c.label));
    // Training FLOPs: 2 per FMA forward, twice that backward.
    auto spec = DescribeNetwork(network, c.width, input);
    const double flops = 6.0 * static_cast<double>(spec->Fmas()) * batch / s;
    nlohmann::json result = {{"config", c.label}, {"step_ms", s * 1e3}, {"images_per_sec", batch / s},
                             {"tflops", flops / 1e12}};
    std::string line = absl::StrFormat("  %-9s  step %8.2f ms   %9.1f images/s   %7.3f TFLOP/s",
                                       c.label, s * 1e3, batch / s, flops / 1e12);
    if (device.is_cuda()) {  // peak_flops is a GPU's: no MFU for a CPU run
      result["mfu"] = flops / peak_flops;
      line += absl::StrFormat("   MFU %5.1f%%", 100 * flops / peak_flops);
    }
    std::cout << line << "\n";
    results.push_back(result);
    std::string key = absl::StrFormat("images_per_s_%s", c.label);
    std::replace(key.begin(), key.end(), ' ', '_');
    report.Rate(key, batch / s, 1);
    if (c.width == 2.0 && c.wbits == 32 && c.abits == 32) fp32_2x = s;
    if (c.width == 2.0 && c.wbits == 2 && c.abits == 4) q_2x = s;
  }
  if (fp32_2x > 0 && q_2x > 0) {
    std::cout << absl::StrFormat("quantization overhead (2x W2A4 / 2x 32/32 step time): %.3f\n", q_2x / fp32_2x);
    report.Rate("quantization_overhead", q_2x / fp32_2x, 3);
  }
  report.Count("steps", steps_run).Count("images", images);
  if (!report.Finish()) return 1;
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"network", network}, {"batch", batch},
                                               {"device", device.str()}, {"results", results},
                                               {"overhead_ratio", q_2x / fp32_2x}}.dump(2);
  }
  return 0;
}
