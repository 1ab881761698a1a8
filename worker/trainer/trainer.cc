#include "worker/trainer/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/network_spec.h"
#include "common/quant_scheme.h"
#include "worker/trainer/data.h"
#include "worker/trainer/networks.h"
#include "worker/trainer/optim.h"
#include "worker/trainer/reducer.h"

#ifdef WRPN_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include "absl/strings/numbers.h"
#include "common/gpu_share.h"

namespace wrpn::trainer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// An error with the exit code it maps to.
struct TrialError {
  int code;
  FailureKind kind;
  std::string reason;
};

// GPU memory the caching allocator holds on `d` (0 on the CPU).
double GpuMemoryBytes(const torch::Device& d) {
#ifdef WRPN_TORCH_CUDA
  if (d.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index());
    return static_cast<double>(stats.reserved_bytes[0].current);
  }
#endif
  (void)d;
  return 0;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Learning rate at fractional epoch `t` (0 <= t < epochs).
double LearningRate(const TrialConfig& c, double t) {
  const double base = c.lr;
  if (c.schedule == "onecycle") {
    // Linear ramp from lr/25 to lr over the first 30%, then cosine down to lr/1e4.
    const double pct = t / c.epochs, up = 0.3;
    if (pct < up) return base / 25 + (base - base / 25) * pct / up;
    const double q = (pct - up) / (1 - up);
    return base / 1e4 + (base - base / 1e4) * 0.5 * (1 + std::cos(M_PI * q));
  }
  if (t < c.warmup_epochs) return base * (t + 1.0 / 64) / c.warmup_epochs;
  if (c.schedule == "cosine") {
    const double q = (t - c.warmup_epochs) / (c.epochs - c.warmup_epochs);
    return base * 0.5 * (1 + std::cos(M_PI * q));
  }
  if (c.schedule == "step") return base * std::pow(c.gamma, std::floor(t / c.step_epochs));
  return base;
}

// Enables bf16 autocast on CUDA for its lifetime (LibTorch 1.x and 2.x spell this differently).
class AutocastScope {
 public:
  explicit AutocastScope(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastScope() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  void StepDone() const {
    if (on_) at::autocast::clear_cache();
  }

 private:
  bool on_;
};

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const TrialConfig& c,
                                                       std::vector<torch::Tensor> params) {
  if (c.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(c.lr)
                                                         .momentum(c.momentum)
                                                         .nesterov(c.nesterov)
                                                         .weight_decay(c.weight_decay));
}

torch::Tensor BytesTensor(const std::string& s) {
  return torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())},
                          torch::kUInt8)
      .clone();
}
std::string TensorBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

struct Position {
  int64_t epoch = 0;  // epoch in progress
  int64_t step = 0;   // steps of that epoch already taken
  double best_top1 = 0;
};

class Trial {
 public:
  Trial(const TrialConfig& c, const EventSink& sink, const RunOptions& options)
      : c_(c), sink_(sink), options_(options), device_(torch::kCPU) {}

  int Run() {
    try {
      return RunOrThrow();
    } catch (const TrialError& e) {
      Emit(FailedEvent{e.kind, e.reason});
      return e.code;
    } catch (const c10::Error& e) {
      if (IsOutOfMemory(e)) {
        Emit(FailedEvent{FailureKind::kResources, OutOfMemoryReason(e.what_without_backtrace())});
        return kExitResources;
      }
      Emit(FailedEvent{FailureKind::kInternal, e.what_without_backtrace()});
      return kExitInternal;
    } catch (const std::exception& e) {
      Emit(FailedEvent{FailureKind::kInternal, e.what()});
      return kExitInternal;
    }
  }

 private:
  bool leader() const { return !comm_ || comm_->rank() == 0; }
  int world() const { return comm_ ? comm_->world_size() : 1; }
  // Every rank reports its own failure (with its rank); only the leader reports the rest.
  void Emit(TrainerEvent e) const {
    auto* failed = std::get_if<FailedEvent>(&e);
    if (!leader() && !failed) return;
    if (failed && comm_) failed->rank = comm_->rank();
    sink_(ToJson(e));
  }
  // Sums a few scalars over ranks (a no-op on one rank).
  std::vector<double> SumOverRanks(std::vector<double> v) {
    if (!comm_) return v;
    torch::Tensor t = torch::tensor(v, torch::kDouble);
    if (comm_->backend() == "nccl") t = t.to(device_);
    comm_->AllReduceSum(t)->Wait();
    t = t.to(torch::kCPU);
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }
  std::vector<torch::Tensor> ModelState() const {
    std::vector<torch::Tensor> all = model_->parameters();
    for (auto& b : model_->buffers()) all.push_back(b);
    return all;
  }

  [[noreturn]] static void Fail(int code, FailureKind kind, const std::string& reason) {
    throw TrialError{code, kind, reason};
  }

  // The trial's GPU memory cap, from RunOptions or WRPN_GPU_MEMORY_BYTES; 0 = none.
  int64_t GpuMemoryCap() const {
    if (options_.gpu_memory_bytes) return *options_.gpu_memory_bytes;
    const char* v = std::getenv(kGpuMemoryBytesEnv);
    int64_t bytes = 0;
    if (v == nullptr || *v == '\0') return 0;
    if (!absl::SimpleAtoi(v, &bytes) || bytes < 0) {
      Fail(kExitBadConfig, FailureKind::kConfig,
           absl::StrCat(kGpuMemoryBytesEnv, ": '", v, "' is not a number of bytes"));
    }
    return bytes;
  }

  // Caps this process's CUDA caching allocator on device_ at the trial's GPU memory.
  void CapGpuMemory() {
    const int64_t cap = GpuMemoryCap();
    if (cap <= 0 || !device_.is_cuda()) return;
#ifdef WRPN_TORCH_CUDA
    const double total = static_cast<double>(at::cuda::getDeviceProperties(device_.index())->totalGlobalMem);
    const double fraction = std::min(1.0, static_cast<double>(cap) / total);
    c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, device_.index());
    memory_cap_ = cap;
    std::cerr << absl::StrFormat("wrpn-train: GPU memory capped at %.3g GiB (%.3f of %s)\n",
                                 cap / double(1LL << 30), fraction, device_.str());
#endif
  }

  std::string OutOfMemoryReason(const std::string& what) const {
    std::string first = what.substr(0, what.find('\n'));
    if (memory_cap_ > 0) {
      return absl::StrFormat("out of GPU memory under the trial's cap of %.3g GiB "
                             "(resources.gpu_memory_gb): %s",
                             memory_cap_ / double(1LL << 30), first);
    }
    return "out of GPU memory: " + first;
  }
  int64_t memory_cap_ = 0;

  void Setup() {
    const DistributedOptions& dist = options_.distributed;
    if (c_.batch_size % dist.world_size != 0) {
      Fail(kExitBadConfig, FailureKind::kConfig, absl::StrCat("batch_size: ", c_.batch_size,
                                                  " is not divisible by the world size ", dist.world_size));
    }
    if (c_.device != "cpu") {
      if (!torch::cuda::is_available()) {
        Fail(kExitBadConfig, FailureKind::kConfig, "device: '" + c_.device + "' requested but CUDA is not available");
      }
      // One process per GPU: plain "cuda" means this rank's local GPU.
      device_ = c_.device == "cuda" ? torch::Device(torch::kCUDA, dist.local_rank) : torch::Device(c_.device);
      if (device_.index() >= static_cast<int>(torch::cuda::device_count())) {
        Fail(kExitBadConfig, FailureKind::kConfig, "device: '" + c_.device + "' does not exist");
      }
      CapGpuMemory();
    }
    // Intra-op threads: as configured, else this machine's cores shared among its local ranks.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(c_.threads > 0 ? c_.threads : std::max(1, cores / std::max(1, dist.local_world_size)));
    const int rank_cores = c_.cpu_cores > 0 ? c_.cpu_cores : std::max(1, cores / std::max(1, dist.local_world_size));
    loader_threads_ = c_.num_workers >= 0 ? c_.num_workers : DefaultLoaderThreads(rank_cores, device_.is_cuda());
    if (dist.world_size > 1) {
      auto comm = Connect(dist, device_.is_cuda());
      if (!comm.ok()) Fail(kExitRendezvous, FailureKind::kRendezvous, std::string(comm.status().message()));
      comm_ = std::move(*comm);
    }

    auto data = OpenDataset(c_.dataset);
    if (!data.ok()) Fail(kExitDataError, FailureKind::kData, std::string(data.status().message()));
    data_ = std::move(*data);
    input_ = InputShape{data_.train->channels(), data_.train->height(), data_.train->width(),
                        data_.train->classes()};
    if (data_.train->size() < 2) Fail(kExitDataError, FailureKind::kData, "training split has fewer than 2 samples");
    if (data_.test->size() < 1) Fail(kExitDataError, FailureKind::kData, "test split is empty");

    torch::manual_seed(c_.seed);
    const auto scheme = ParseQuantScheme(c_.scheme);
    if (!scheme) Fail(kExitBadConfig, FailureKind::kConfig, "scheme: unknown scheme '" + c_.scheme + "'");
    if (c_.weight_scale > 0 && *scheme != QuantScheme::kWrpn) {
      Fail(kExitBadConfig, FailureKind::kConfig,
           "weight_scale: is a rule of the wrpn scheme's weight quantizer; scheme " + c_.scheme + " sets its own range");
    }
    auto net = BuildNetwork(c_.network, c_.width, input_,
                            Precision{c_.wbits, c_.abits, c_.weight_scale, *scheme});
    if (!net.ok()) Fail(kExitBadConfig, FailureKind::kConfig, std::string(net.status().message()));
    model_ = *net;
    model_->to(device_);
    if (c_.channels_last) {
      for (auto& p : model_->parameters()) {
        if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
    optimizer_ = MakeOptimizer(c_, model_->parameters());
    if (device_.is_cuda()) fast_sgd_ = dynamic_cast<torch::optim::SGD*>(optimizer_.get());
    auto cost = ComputeCost(c_.network, c_.width, c_.wbits, c_.abits, input_);
    if (!cost.ok()) Fail(kExitBadConfig, FailureKind::kConfig, std::string(cost.status().message()));
    cost_ = *cost;
    global_batch_ = std::min<int64_t>(c_.batch_size, data_.train->size() / world() * world());
    if (global_batch_ < world()) Fail(kExitDataError, FailureKind::kData, "fewer training samples than ranks");
    batch_ = global_batch_ / world();
    steps_per_epoch_ = data_.train->size() / global_batch_;
  }

  json Identity() const {
    return {{"network", c_.network}, {"width", c_.width}, {"wbits", c_.wbits},
            {"abits", c_.abits},     {"weight_scale", c_.weight_scale},
            {"scheme", c_.scheme},
            {"input", {input_.channels, input_.height, input_.width, input_.classes}}};
  }

  bool Quantized() const { return c_.wbits != 32 || c_.abits != 32; }

  // recipe.init_from: fp32: the FP32 trial's final weights and BN statistics, by name; the
  // scheme's own parameters (LSQ steps, PACT alphas) are not in it and start as in a fresh trial.
  void LoadInitCheckpoint() {
    if (c_.init_from.empty() || !Quantized()) return;
    const std::string& path = c_.init_checkpoint;
    if (path.empty()) {
      Fail(kExitBadConfig, FailureKind::kConfig,
           "init_from: fp32 needs init_checkpoint, the FP32 trial's final checkpoint (the "
           "coordinator hands it over once that trial succeeded)");
    }
    if (!leader()) return;  // rank 0's weights are broadcast
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(path, device_);
    } catch (const c10::Error& e) {
      Fail(kExitBadConfig, FailureKind::kConfig, "init_checkpoint: cannot read " + path + ": " + e.what_without_backtrace());
    }
    torch::Tensor meta_t;
    if (!archive.try_read("meta", meta_t)) Fail(kExitBadConfig, FailureKind::kConfig, "init_checkpoint: " + path + " has no metadata");
    const json meta = json::parse(TensorBytes(meta_t), nullptr, false);
    if (meta.is_discarded() || !meta.contains("identity")) {
      Fail(kExitBadConfig, FailureKind::kConfig, "init_checkpoint: " + path + " has corrupt metadata");
    }
    const json& id = meta["identity"];
    json want = Identity();
    want["wbits"] = 32;
    want["abits"] = 32;
    for (const char* key : {"network", "width", "input", "wbits", "abits"}) {
      if (!id.contains(key) || id[key] != want[key]) {
        Fail(kExitBadConfig, FailureKind::kConfig,
             absl::StrCat("init_checkpoint: ", path, " is for ", key, " = ", id.value(key, json()).dump(),
                          ", an FP32 initialisation of this trial needs ", want[key].dump()));
      }
    }
    torch::NoGradGuard no_grad;
    auto load = [&](const std::string& name, torch::Tensor& value, bool buffer) {
      torch::Tensor t;
      if (archive.try_read("model." + name, t, buffer)) return value.copy_(t), true;
      return false;
    };
    for (auto& p : model_->named_parameters()) {
      if (!load(p.key(), p.value(), false) && !SchemeParameter(p.key())) {
        Fail(kExitBadConfig, FailureKind::kConfig, "init_checkpoint: " + path + " has no parameter " + p.key());
      }
    }
    for (auto& b : model_->named_buffers()) {
      if (!load(b.key(), b.value(), true) && !SchemeParameter(b.key())) {
        Fail(kExitBadConfig, FailureKind::kConfig, "init_checkpoint: " + path + " has no buffer " + b.key());
      }
    }
    std::cerr << "wrpn-train: initialised from the FP32 checkpoint " << path << "\n";
  }
  // The quantizers' own parameters and buffers (networks.h), absent from an FP32 checkpoint.
  static bool SchemeParameter(const std::string& name) {
    for (const std::string suffix : {"step", "step_ready", "alpha"}) {
      if (name == suffix || (name.size() > suffix.size() &&
                             name.compare(name.size() - suffix.size() - 1, suffix.size() + 1, "." + suffix) == 0)) {
        return true;
      }
    }
    return false;
  }

  void SaveCheckpoint(const Position& pos) {
    if (!leader()) return;
    const std::string path = CheckpointPath(c_.checkpoint_dir);
    std::error_code ec;
    fs::create_directories(c_.checkpoint_dir, ec);
    if (ec) Fail(kExitInternal, FailureKind::kInternal, "checkpoint_dir: cannot create " + c_.checkpoint_dir + ": " + ec.message());
    torch::serialize::OutputArchive archive;
    for (const auto& p : model_->named_parameters()) archive.write("model." + p.key(), p.value().detach().to(torch::kCPU));
    for (const auto& b : model_->named_buffers()) archive.write("model." + b.key(), b.value().to(torch::kCPU), true);
    torch::serialize::OutputArchive opt;
    optimizer_->save(opt);
    archive.write("optimizer", opt);
    json meta = {{"identity", Identity()},
                 {"epoch", pos.epoch},
                 {"step", pos.step},
                 {"best_top1", pos.best_top1},
                 {"config", TrialConfigToJson(c_)},
                 {"format", 1}};
    archive.write("meta", BytesTensor(meta.dump()));
    archive.write("rng.cpu", at::detail::getDefaultCPUGenerator().get_state());
    const std::string tmp = path + ".tmp";
    archive.save_to(tmp);
    fs::rename(tmp, path, ec);
    if (ec) Fail(kExitInternal, FailureKind::kInternal, "checkpoint: cannot rename " + tmp + ": " + ec.message());
    Emit(CheckpointEvent{pos.epoch, pos.step, path});
  }

  // stop_at_epoch reached (an absolute epoch, so a resumed attempt stops at the same rung).
  bool AtStopEpoch(const Position& pos) const {
    return c_.stop_at_epoch > 0 && pos.epoch >= c_.stop_at_epoch && pos.epoch < c_.epochs;
  }

  // Returns the position to continue from (epoch 0, step 0 when there is no checkpoint).
  Position MaybeResume() {
    Position pos;
    if (!c_.resume) return pos;
    const std::string path = CheckpointPath(c_.checkpoint_dir);
    if (!fs::exists(path)) return pos;
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(path, device_);
    } catch (const c10::Error& e) {
      Fail(kExitBadConfig, FailureKind::kConfig, "resume: cannot read checkpoint " + path + ": " + e.what_without_backtrace());
    }
    torch::Tensor meta_t;
    archive.read("meta", meta_t);
    const json meta = json::parse(TensorBytes(meta_t), nullptr, false);
    if (meta.is_discarded()) Fail(kExitBadConfig, FailureKind::kConfig, "resume: checkpoint " + path + " has corrupt metadata");
    const json want = Identity();
    json have = meta["identity"];
    if (have.is_object() && !have.contains("scheme")) have["scheme"] = kDefaultScheme;  // older checkpoints
    for (const auto& [key, value] : want.items()) {
      if (!have.contains(key) || have[key] != value) {
        Fail(kExitBadConfig, FailureKind::kConfig,
             absl::StrCat("resume: checkpoint ", path, " is for ", key, " = ",
                          have.value(key, json()).dump(), ", this trial has ", value.dump()));
      }
    }
    torch::NoGradGuard no_grad;
    for (auto& p : model_->named_parameters()) {
      torch::Tensor t;
      archive.read("model." + p.key(), t);
      p.value().copy_(t);
    }
    for (auto& b : model_->named_buffers()) {
      torch::Tensor t;
      archive.read("model." + b.key(), t, true);
      b.value().copy_(t);
    }
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer_->load(opt);
    torch::Tensor rng;
    archive.read("rng.cpu", rng);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(rng.to(torch::kCPU));
    pos.epoch = meta["epoch"].get<int64_t>();
    pos.step = meta["step"].get<int64_t>();
    pos.best_top1 = meta["best_top1"].get<double>();
    if (pos.step >= steps_per_epoch_) {
      ++pos.epoch;
      pos.step = 0;
    }
    return pos;
  }

  struct EvalResult {
    double loss = 0, top1 = 0, top5 = 0;
  };

  EvalResult Evaluate() {
    torch::NoGradGuard no_grad;
    model_->eval();
    AutocastScope autocast(c_.amp);
    if (comm_) BroadcastTensors(model_->buffers(), *comm_);  // evaluate rank 0's BN statistics
    std::vector<int64_t> order;
    for (int64_t i = comm_ ? comm_->rank() : 0; i < data_.test->size(); i += world()) order.push_back(i);
    BatchLoader loader(*data_.test, std::move(order), std::max<int64_t>(batch_, 256), false, false,
                       0, loader_threads_);
    torch::Tensor loss = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    torch::Tensor top1 = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kLong));
    torch::Tensor top5 = top1.clone();
    const int64_t k = std::min<int64_t>(5, input_.classes);
    while (true) {
      auto b = loader.Next();
      if (!b.ok()) Fail(kExitDataError, FailureKind::kData, std::string(b.status().message()));
      if (!*b) break;
      auto [x, y] = ToDevice(*b);
      torch::Tensor logits = model_->forward(x).to(torch::kFloat);
      loss += torch::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).to(torch::kDouble);
      torch::Tensor topk = std::get<1>(logits.topk(k, 1));
      torch::Tensor hit = topk.eq(y.unsqueeze(1));
      top1 += hit.select(1, 0).sum();
      top5 += hit.any(1).sum();
    }
    model_->train();
    const auto sums = SumOverRanks({loss.item<double>(), static_cast<double>(top1.item<int64_t>()),
                                    static_cast<double>(top5.item<int64_t>())});
    const double n = static_cast<double>(data_.test->size());
    return {sums[0] / n, 100.0 * sums[1] / n, 100.0 * sums[2] / n};
  }

  std::pair<torch::Tensor, torch::Tensor> ToDevice(const std::shared_ptr<Batch>& b) {
    const int64_t n = b->size;
    // Wrap the loader's buffers without copying; the deleter keeps the batch alive.
    auto keep = new std::shared_ptr<Batch>(b);
    torch::Tensor x = torch::from_blob(b->images.data(), {n, input_.channels, input_.height, input_.width},
                                       [keep](void*) { delete keep; }, torch::kFloat);
    torch::Tensor y = torch::from_blob(b->labels.data(), {n}, torch::kLong);
    if (device_.is_cuda()) {
      x = x.pin_memory().to(device_, /*non_blocking=*/true);
      y = y.to(device_);
      if (c_.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    } else {
      y = y.clone();
    }
    return {x, y};
  }

  bool LocalStop() const { return options_.stop && options_.stop->load(); }
  // Every rank must stop at the same step, so ranks agree on a stop request.
  bool StopRequested() {
    if (!comm_) return LocalStop();
    return SumOverRanks({LocalStop() ? 1.0 : 0.0})[0] > 0;
  }

  // This rank's share of an epoch: for step s, the global batch is order[s*B, (s+1)*B) and rank
  // r takes its r-th slice, so R ranks see exactly what one rank with batch B sees.
  std::vector<int64_t> ShardOrder(int64_t epoch) const {
    const std::vector<int64_t> order = EpochOrder(data_.train->size(), c_.seed, epoch);
    if (!comm_) return order;
    std::vector<int64_t> mine;
    mine.reserve(steps_per_epoch_ * batch_);
    for (int64_t s = 0; s < steps_per_epoch_; ++s) {
      const int64_t begin = s * global_batch_ + comm_->rank() * batch_;
      mine.insert(mine.end(), order.begin() + begin, order.begin() + begin + batch_);
    }
    return mine;
  }

  int RunOrThrow() {
    Setup();
    Position pos = MaybeResume();
    if (pos.epoch == 0 && pos.step == 0) LoadInitCheckpoint();
    // LSQ activation steps start from each rank's first batch: rank 0's are broadcast after it.
    bool broadcast_init = comm_ && QuantizerInitPending(*model_);
    std::unique_ptr<GradientReducer> reducer;
    if (comm_) {
      BroadcastTensors(ModelState(), *comm_);
      reducer = std::make_unique<GradientReducer>(model_->parameters(), *comm_,
                                                  options_.distributed.bucket_bytes);
    }
    const auto params = [&] {
      int64_t n = 0;
      for (const auto& p : model_->parameters()) n += p.numel();
      return n;
    }();
    StartedEvent started;
    started.config = TrialConfigToJson(c_);
    started.parameters = params;
    started.train_size = data_.train->size();
    started.test_size = data_.test->size();
    started.steps_per_epoch = steps_per_epoch_;
    started.start_epoch = pos.epoch;
    started.start_step = pos.step;
    started.device = device_.str();
    started.world_size = world();
    started.backend = comm_ ? comm_->backend() : "none";
    started.cost_uniform = cost_.cost_uniform;
    started.cost_first_last_fp32 = cost_.cost_first_last_fp32;
    Emit(started);
    model_->train();
    EvalResult last;
    double images = 0, train_seconds = 0;
    const int64_t first_epoch = pos.epoch;
    if (AtStopEpoch(pos)) {  // resumed at (or past) the epoch to stop at: train nothing
      if (!c_.checkpoint_dir.empty()) SaveCheckpoint(pos);
      Emit(InterruptedEvent{pos.epoch, pos.step, !c_.checkpoint_dir.empty()});
      return kExitInterrupted;
    }
    while (pos.epoch < c_.epochs) {
      torch::manual_seed(MixSeed(c_.seed, static_cast<uint64_t>(pos.epoch)));
      BatchLoader loader(*data_.train, ShardOrder(pos.epoch), batch_,
                         /*drop_last=*/true, c_.dataset.augment, MixSeed(c_.seed ^ 0xA5A5, pos.epoch),
                         loader_threads_, 4, pos.step);
      torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
      torch::Tensor correct = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kLong));
      int64_t seen = 0;
      const auto t0 = Clock::now();
      const double wait0 = reducer ? reducer->wait_seconds() : 0;
      const int64_t step0 = pos.step;
      while (pos.step < steps_per_epoch_) {
        auto b = loader.Next();
        if (!b.ok()) Fail(kExitDataError, FailureKind::kData, std::string(b.status().message()));
        const double lr = LearningRate(c_, pos.epoch + static_cast<double>(pos.step) / steps_per_epoch_);
        for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
        auto [x, y] = ToDevice(*b);
        optimizer_->zero_grad();
        torch::Tensor logits;
        {
          AutocastScope autocast(c_.amp);
          logits = model_->forward(x);
        }
        torch::Tensor loss = torch::cross_entropy_loss(logits.to(torch::kFloat), y);
        if (reducer) reducer->Prepare();
        loss.backward();
        if (reducer) reducer->Finish();
        if (fast_sgd_) {
          ForeachSgdStep(*fast_sgd_);
        } else {
          optimizer_->step();
        }
        if (broadcast_init) {
          BroadcastTensors(ModelState(), *comm_);
          broadcast_init = false;
        }
        loss_sum += loss.detach().to(torch::kDouble) * static_cast<double>(x.size(0));
        correct += logits.detach().argmax(1).eq(y).sum();
        seen += x.size(0);
        ++pos.step;
        if (StopRequested()) {
          if (!c_.checkpoint_dir.empty()) SaveCheckpoint(pos);
          Emit(InterruptedEvent{pos.epoch, pos.step, !c_.checkpoint_dir.empty()});
          return kExitInterrupted;
        }
      }
      if (device_.is_cuda()) torch::cuda::synchronize();
      const double secs = Seconds(t0, Clock::now());
      train_seconds += secs;
      const int64_t steps = pos.step - step0;
      const double data_wait_ms = steps > 0 ? 1e3 * loader.wait_seconds() / steps : 0.0;
      WarnIfInputBound(data_wait_ms, steps > 0 ? 1e3 * secs / steps : 0.0);
      last = Evaluate();
      pos.best_top1 = std::max(pos.best_top1, last.top1);
      const auto train_sums = SumOverRanks({loss_sum.item<double>(), static_cast<double>(correct.item<int64_t>()),
                                            static_cast<double>(seen)});
      seen = static_cast<int64_t>(train_sums[2]);
      images += static_cast<double>(seen);
      const double train_loss = seen ? train_sums[0] / seen : 0;
      if (!std::isfinite(train_loss)) {
        Fail(kExitInternal, FailureKind::kInternal, absl::StrCat("training diverged: loss is ", train_loss, " in epoch ", pos.epoch));
      }
      EpochEvent ev;
      ev.epoch = pos.epoch;
      ev.epochs = c_.epochs;
      ev.train_loss = train_loss;
      ev.train_top1 = seen ? 100.0 * train_sums[1] / seen : 0;
      ev.test_loss = last.loss;
      ev.top1 = last.top1;
      ev.top5 = last.top5;
      ev.lr = LearningRate(c_, pos.epoch + 1.0 - 1e-9);
      ev.images_per_sec = secs > 0 ? seen / secs : 0;
      ev.seconds = secs;
      ev.gpu_memory_bytes = GpuMemoryBytes(device_);
      // Time per step spent waiting for gradient all-reduces not hidden behind backward.
      ev.allreduce_wait_ms_per_step =
          reducer && pos.step > step0 ? 1e3 * (reducer->wait_seconds() - wait0) / (pos.step - step0) : 0.0;
      // Time per step the training thread waited for its batch (this rank's loader).
      ev.data_wait_ms_per_step = data_wait_ms;
      Emit(ev);
      ++pos.epoch;
      pos.step = 0;
      if (!c_.checkpoint_dir.empty()) SaveCheckpoint(pos);
      const bool budget_done =
          (c_.stop_after_epochs > 0 && pos.epoch - first_epoch >= c_.stop_after_epochs) || AtStopEpoch(pos);
      if ((budget_done || StopRequested()) && pos.epoch < c_.epochs) {
        Emit(InterruptedEvent{pos.epoch, 0, !c_.checkpoint_dir.empty()});
        return kExitInterrupted;
      }
    }
    if (pos.epoch == first_epoch) last = Evaluate();  // resumed a finished trial
    FinishedEvent fin;
    fin.top1 = last.top1;
    fin.top5 = last.top5;
    fin.test_loss = last.loss;
    fin.best_top1 = std::max(pos.best_top1, last.top1);
    fin.epochs = c_.epochs;
    fin.images_per_sec = train_seconds > 0 ? images / train_seconds : 0;
    fin.cost_uniform = cost_.cost_uniform;
    fin.cost_first_last_fp32 = cost_.cost_first_last_fp32;
    fin.fma_ratio = cost_.fma_ratio;
    Emit(fin);
    if (comm_) comm_->Barrier();  // rank 0 hosts the store: leave together
    return kExitOk;
  }

  const TrialConfig c_;
  const EventSink& sink_;
  const RunOptions options_;
  torch::Device device_;
  DataSplits data_;
  InputShape input_;
  std::shared_ptr<Network> model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  torch::optim::SGD* fast_sgd_ = nullptr;  // set on CUDA: step with ForeachSgdStep
  CostReport cost_;
  std::unique_ptr<Communicator> comm_;
  int64_t global_batch_ = 0;
  int64_t batch_ = 0;  // per rank
  int loader_threads_ = 0;
  bool warned_input_bound_ = false;

  // Once per run, on stderr: steps that wait for data more than 10% of their time.
  void WarnIfInputBound(double wait_ms, double step_ms) {
    if (warned_input_bound_ || !leader() || step_ms <= 0 || wait_ms <= 0.1 * step_ms) return;
    warned_input_bound_ = true;
    std::cerr << absl::StrFormat(
        "wrpn-train: warning: input-bound: each step waited %.1f ms for data, %.0f%% of its %.1f ms "
        "(%d loader threads); give the trial more cores (num_workers, cpu_cores) or read a packed "
        "dataset (wrpn-train prepare)\n",
        wait_ms, 100 * wait_ms / step_ms, step_ms, loader_threads_);
  }
  int64_t steps_per_epoch_ = 0;
};

}  // namespace

bool IsOutOfMemory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) return true;
  const std::string what = e.what();
  return dynamic_cast<const c10::Error*>(&e) != nullptr &&
         what.find("CUDA out of memory") != std::string::npos;
}

std::string CheckpointPath(const std::string& checkpoint_dir) {
  return (fs::path(checkpoint_dir) / "last.pt").string();
}

int RunTrial(const TrialConfig& config, const EventSink& sink, const RunOptions& options) {
  Trial trial(config, sink, options);
  return trial.Run();
}

std::vector<std::pair<std::string, std::vector<float>>> ReadCheckpointWeights(const std::string& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path, torch::kCPU);
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const auto& key : archive.keys()) {
    if (key.rfind("model.", 0) != 0) continue;
    torch::Tensor t;
    archive.read(key, t, true);
    if (t.scalar_type() != torch::kFloat) continue;
    t = t.contiguous();
    out.emplace_back(key, std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()));
  }
  return out;
}

}  // namespace wrpn::trainer
