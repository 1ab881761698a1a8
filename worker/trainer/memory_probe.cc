#include "worker/trainer/memory_probe.h"

#include <malloc.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/memory_model.h"
#include "common/trial_config.h"
#include "worker/trainer/networks.h"
#include "worker/trainer/optim.h"
#include "worker/trainer/trainer.h"

#ifdef WRPN_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#endif

namespace wrpn::trainer {
namespace {

// Live and peak bytes of every CPU tensor allocated through LibTorch's allocator. Never
// destroyed: tensors may be freed during static destruction.
struct CpuCounters {
  std::mutex mu;
  std::unordered_map<void*, size_t> sizes;
  int64_t current = 0;
  int64_t peak = 0;
};
CpuCounters& Counters() {
  static auto* c = new CpuCounters;
  return *c;
}

// LibTorch's default CPU allocation (c10::alloc_cpu / free_cpu), counted. Declares allocate both
// const (LibTorch 1.x) and non-const (2.3 and later), and copy_data (2.3 and later), so it
// overrides whichever the installed LibTorch has.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const { return Allocate(n); }
  c10::DataPtr allocate(size_t n) { return Allocate(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    std::memcpy(dest, src, count);
  }

 private:
  static c10::DataPtr Allocate(size_t n) {
    void* p = c10::alloc_cpu(n);
    if (p) {
      CpuCounters& c = Counters();
      std::lock_guard<std::mutex> lock(c.mu);
      c.sizes[p] = n;
      c.current += static_cast<int64_t>(n);
      c.peak = std::max(c.peak, c.current);
    }
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }
  static void Free(void* p) {
    if (!p) return;
    {
      CpuCounters& c = Counters();
      std::lock_guard<std::mutex> lock(c.mu);
      auto it = c.sizes.find(p);
      if (it != c.sizes.end()) {
        c.current -= static_cast<int64_t>(it->second);
        c.sizes.erase(it);
      }
    }
    c10::free_cpu(p);
  }
};

void InstallCountingAllocator() {
  static CountingCpuAllocator* alloc = [] {
    auto* a = new CountingCpuAllocator;
    c10::SetCPUAllocator(a, /*priority=*/100);
    return a;
  }();
  (void)alloc;
}

int64_t CpuLive() {
  std::lock_guard<std::mutex> lock(Counters().mu);
  return Counters().current;
}
int64_t CpuResetPeak() {
  std::lock_guard<std::mutex> lock(Counters().mu);
  Counters().peak = Counters().current;
  return Counters().current;
}
int64_t CpuPeak() {
  std::lock_guard<std::mutex> lock(Counters().mu);
  return Counters().peak;
}

// A field of /proc/self/status in bytes (VmRSS, VmHWM), 0 when unreadable.
double ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return 1024.0 * std::atof(line.c_str() + field.size() + 1);
  }
  return 0;
}

// Returns the heap's free memory to the system, then resets the peak resident set to the
// current one (Linux: /proc/self/clear_refs "5"); false when the reset is not allowed.
bool ResetPeakRss() {
  malloc_trim(0);
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return f.good();
}

// Live and reserved bytes of the CUDA caching allocator on `d`.
struct CudaBytes {
  double live = 0, reserved = 0, live_peak = 0, reserved_peak = 0;
};
CudaBytes CudaStats(const torch::Device& d, bool reset_peak) {
  CudaBytes b;
#ifdef WRPN_TORCH_CUDA
  torch::cuda::synchronize(d.index());
  namespace alloc = c10::cuda::CUDACachingAllocator;
  if (reset_peak) alloc::resetPeakStats(d.index());
  const auto s = alloc::getDeviceStats(d.index());
  b.live = static_cast<double>(s.allocated_bytes[0].current);
  b.reserved = static_cast<double>(s.reserved_bytes[0].current);
  b.live_peak = static_cast<double>(s.allocated_bytes[0].peak);
  b.reserved_peak = static_cast<double>(s.reserved_bytes[0].peak);
#else
  (void)d;
  (void)reset_peak;
#endif
  return b;
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  try {
    const torch::Device d(name == "cuda" ? "cuda:0" : name);
    if (d.is_cuda()) {
#ifdef WRPN_TORCH_CUDA
      if (!torch::cuda::is_available()) return absl::FailedPreconditionError("--device: no CUDA device");
      if (d.index() >= static_cast<int>(torch::cuda::device_count())) {
        return absl::InvalidArgumentError(absl::StrCat("--device: no ", name));
      }
#else
      return absl::FailedPreconditionError("--device: this LibTorch has no CUDA");
#endif
    } else if (!d.is_cpu()) {
      return absl::InvalidArgumentError(absl::StrCat("--device: expected cpu or cuda[:N], got '", name, "'"));
    }
    return d;
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(absl::StrCat("--device: expected cpu or cuda[:N], got '", name, "'"));
  }
}

// One step of the training loop in trainer.cc: zero_grad, forward, cross entropy, backward, SGD
// (the trial defaults: momentum, Nesterov, weight decay).
void Step(Network& net, torch::optim::SGD& opt, const torch::Tensor& x, const torch::Tensor& y,
          bool cuda) {
  opt.zero_grad();
  const torch::Tensor logits = net.forward(x);
  torch::Tensor loss = torch::cross_entropy_loss(logits.to(torch::kFloat), y);
  loss.backward();
  if (cuda) {
    ForeachSgdStep(opt);
  } else {
    opt.step();
  }
}

std::string MiB(double bytes) { return absl::StrFormat("%.1f", bytes / (1 << 20)); }

}  // namespace

absl::StatusOr<MeasuredStep> MeasureTrainingStep(const MeasureOptions& o, int batch) {
  auto device = ParseDevice(o.device);
  if (!device.ok()) return device.status();
  const bool cuda = device->is_cuda();
  InstallCountingAllocator();
  torch::manual_seed(1);
  MeasuredStep m;
  m.batch = batch;
  m.device = device->str();
  try {
    ResetPeakRss();
    const double rss_base = ProcStatusBytes("VmRSS");
    const int64_t cpu_base = CpuLive();
    const CudaBytes cuda_base = cuda ? CudaStats(*device, false) : CudaBytes{};
    auto net = BuildNetwork(o.network, o.width, o.input, Precision{o.wbits, o.abits, 0});
    if (!net.ok()) return net.status();
    (*net)->to(*device);
    (*net)->train();
    const TrialConfig defaults;
    torch::optim::SGD opt((*net)->parameters(), torch::optim::SGDOptions(defaults.lr)
                                                    .momentum(defaults.momentum)
                                                    .nesterov(defaults.nesterov)
                                                    .weight_decay(defaults.weight_decay));
    const auto opts = torch::TensorOptions().device(*device);
    const torch::Tensor x =
        torch::rand({batch, o.input.channels, o.input.height, o.input.width}, opts);
    const torch::Tensor y = torch::randint(0, o.input.classes, {batch}, opts.dtype(torch::kLong));
    Step(**net, opt, x, y, cuda);  // warm-up: gradients and momentum buffers now exist
    if (cuda) {
      const CudaBytes before = CudaStats(*device, true);
      Step(**net, opt, x, y, cuda);
      const CudaBytes after = CudaStats(*device, false);
      m.tensor_before_step_bytes = before.live - cuda_base.live;
      m.tensor_peak_bytes = after.live_peak - cuda_base.live;
      m.held_peak_bytes = after.reserved_peak - cuda_base.reserved;
    } else {
      m.tensor_before_step_bytes = static_cast<double>(CpuResetPeak() - cpu_base);
      ResetPeakRss();
      Step(**net, opt, x, y, cuda);
      m.tensor_peak_bytes = static_cast<double>(CpuPeak() - cpu_base);
      m.held_peak_bytes = ProcStatusBytes("VmHWM") - rss_base;
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("measuring batch ", batch, ": ", e.what()));
  }
  malloc_trim(0);
  return m;
}

int DescribeMeasured(const MeasureOptions& o, const std::vector<int>& batches, bool as_json) {
  auto spec = DescribeNetwork(o.network, o.width, o.input);
  if (!spec.ok()) {
    std::cerr << "wrpn-train: " << spec.status().message() << "\n";
    return kExitBadConfig;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (int b : batches) {
    auto m = MeasureTrainingStep(o, b);
    if (!m.ok()) {
      std::cerr << "wrpn-train: " << m.status().message() << "\n";
      return absl::IsInternal(m.status()) ? kExitInternal : kExitBadConfig;
    }
    const auto paper = ComputeFootprint(*spec, o.wbits, o.abits, b);
    const auto model = ComputeAutogradFootprint(*spec, o.wbits, o.abits, b, Storage::kAsTrained);
    const auto packed = ComputeAutogradFootprint(*spec, o.wbits, o.abits, b, Storage::kPacked);
    rows.push_back({{"batch", b},
                    {"paper_training_bytes", paper.training_bytes},
                    {"paper_activation_fraction", paper.activation_fraction},
                    {"autograd_training_bytes", model.training_bytes},
                    {"autograd_activation_bytes", model.activation_bytes},
                    {"autograd_weight_bytes", model.weight_bytes},
                    {"autograd_gradient_bytes", model.gradient_bytes},
                    {"autograd_activation_fraction", model.activation_fraction},
                    {"packed_training_bytes", packed.training_bytes},
                    {"packed_activation_fraction", packed.activation_fraction},
                    {"measured_tensor_peak_bytes", m->tensor_peak_bytes},
                    {"measured_before_step_bytes", m->tensor_before_step_bytes},
                    {"measured_held_peak_bytes", m->held_peak_bytes},
                    {"model_error", model.training_bytes / m->tensor_peak_bytes - 1}});
  }
  const std::string device = rows.empty() ? o.device : ParseDevice(o.device)->str();
  if (as_json) {
    nlohmann::json out = {{"network", o.network}, {"width", o.width},    {"wbits", o.wbits},
                          {"abits", o.abits},     {"device", device},    {"torch", TORCH_VERSION},
                          {"input", {o.input.channels, o.input.height, o.input.width}},
                          {"classes", o.input.classes}, {"measured", rows}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "%s %gx  weights %d bits  activations %d bits  input %dx%dx%d  on %s (LibTorch %s)\n"
      "one training step (forward, loss, backward, SGD with momentum), memory in MiB\n\n",
      o.network, o.width, o.wbits, o.abits, o.input.channels, o.input.height, o.input.width, device,
      TORCH_VERSION);
  std::cout << absl::StrFormat("%6s %12s %7s %14s %7s %14s %8s %12s %12s\n", "batch", "paper model",
                               "act %", "autograd model", "act %", "measured peak", "error",
                               device == "cpu" ? "peak RSS" : "reserved", "packed w/a");
  for (const auto& r : rows) {
    std::cout << absl::StrFormat(
        "%6d %12s %6.1f%% %14s %6.1f%% %14s %+7.1f%% %12s %12s\n", r["batch"].get<int>(),
        MiB(r["paper_training_bytes"]), 100 * r["paper_activation_fraction"].get<double>(),
        MiB(r["autograd_training_bytes"]), 100 * r["autograd_activation_fraction"].get<double>(),
        MiB(r["measured_tensor_peak_bytes"]), 100 * r["model_error"].get<double>(),
        MiB(r["measured_held_peak_bytes"]), MiB(r["packed_training_bytes"]));
  }
  std::cout << "\npaper model: the paper's section 2 (conv/linear input and output maps, weights, two "
               "gradient maps)\nautograd model: the tensors autograd keeps, parameters + gradients + "
               "momentum, gradient maps in flight\nmeasured peak: live tensor bytes (LibTorch's "
               "allocator); error = autograd model / measured - 1\n"
               "packed w/a: the autograd model with quantized activations and weights stored at "
               "their bits (today's trainer stores FP32)\n";
  return kExitOk;
}

}  // namespace wrpn::trainer
