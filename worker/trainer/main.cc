// wrpn-train: trains one WRPN trial (`train`) or prints a network's per-layer cost and memory
// model (`describe`). Events go to stdout as JSON lines; human logs go to stderr.
#include <unistd.h>

#include <csignal>
#include <optional>
#include <set>
#include <tuple>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/memory_model.h"
#include "common/network_report.h"
#include "common/network_spec.h"
#include "common/trial_config.h"
#include "worker/trainer/launcher.h"
#include "worker/trainer/memory_probe.h"
#include "worker/trainer/prepare_command.h"
#include "worker/trainer/slurm_env.h"
#include "worker/trainer/trainer.h"

namespace {

using json = nlohmann::json;
using namespace wrpn;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// The human-readable line for one event, on stderr.
struct PrintHuman {
  void operator()(const EpochEvent& e) const {
    std::cerr << absl::StrFormat(
        "epoch %d/%d  train_loss %.4f  test_loss %.4f  top1 %.2f  top5 %.2f  %.0f img/s  lr %.4g\n",
        e.epoch + 1, e.epochs, e.train_loss, e.test_loss, e.top1, e.top5, e.images_per_sec, e.lr);
  }
  void operator()(const FailedEvent& e) const {
    std::cerr << "wrpn-train: " << FailureKindName(e.kind) << " error: " << e.reason << "\n";
  }
  void operator()(const FinishedEvent& e) const {
    std::cerr << absl::StrFormat("finished: top1 %.2f  top5 %.2f  cost %.3f (uniform) %.3f "
                                 "(first/last fp32)\n",
                                 e.top1, e.top5, e.cost_uniform, e.cost_first_last_fp32);
  }
  void operator()(const InterruptedEvent& e) const {
    std::cerr << "interrupted at epoch " << e.epoch << " step " << e.step << "\n";
  }
  void operator()(const StartedEvent&) const {}
  void operator()(const CheckpointEvent&) const {}
};

int FailConfig(const std::string& reason) {
  const TrainerEvent e = FailedEvent{FailureKind::kConfig, reason};
  std::cout << ToJson(e).dump() << std::endl;
  std::visit(PrintHuman{}, e);
  return kExitBadConfig;
}

// One flag per field of the trial config (common/trial_config_fields.inc), each writing its
// value into `overrides` (a trial-config JSON object laid over --config); a bool field gets
// --flag and --no-flag.
void AddTrialConfigFlags(CLI::App& train, json& overrides) {
  for (const FieldInfo& f : TrialConfigFields()) {
    const std::string flag(f.flag);
    if (f.type == FieldType::kBool) {
      train.add_flag_callback(flag, [&overrides, &f] { SetTrialConfigJson(overrides, f, true); },
                              std::string(f.help));
      train.add_flag_callback("--no-" + flag.substr(2),
                              [&overrides, &f] { SetTrialConfigJson(overrides, f, false); },
                              absl::StrCat("the opposite of ", flag));
      continue;
    }
    train.add_option_function<std::string>(
        flag,
        [&overrides, &f](const std::string& text) {
          absl::StatusOr<json> v = FieldValueFromText(f, text);
          if (!v.ok()) throw CLI::ValidationError(std::string(v.status().message()));
          SetTrialConfigJson(overrides, f, *std::move(v));
        },
        std::string(f.help));
  }
}

std::string FormatCount(double v) {
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e3) return absl::StrFormat("%.1fK", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

std::string FormatBytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.2f MiB", b / (1024.0 * 1024));
  return absl::StrFormat("%.1f KiB", b / 1024.0);
}

struct DescribeArgs {
  std::string network = "resnet34";
  double width = 1.0;
  int wbits = 32, abits = 32;
  std::string input;
  int classes = 0;
  std::vector<int> batches = {128};
  bool json = false, measure = false;
  std::string device = "cpu";
};

CLI::App* AddDescribeCommand(CLI::App& app, DescribeArgs& d) {
  auto* describe = app.add_subcommand(
      "describe", "Per-layer FMAs, parameters, compute cost and memory footprint of a network");
  describe->add_flag("--measure", d.measure, "also run one training step per batch and measure its peak memory");
  describe->add_option("--device", d.device, "with --measure: cpu|cuda|cuda:N");
  describe->add_option("--network", d.network, "lenet5|resnet20|resnet18|resnet34|resnet50|alexnet|inception_bn")
      ->required();
  describe->add_option("--width", d.width, "width multiplier (e.g. 1, 1.3, 2)");
  describe->add_option("--wbits", d.wbits, "weight bits: 1..16 or 32");
  describe->add_option("--abits", d.abits, "activation bits: 1..16 or 32");
  describe->add_option("--batch", d.batches, "batch size(s) for the memory model")->delimiter(',');
  describe->add_option("--input", d.input, "input as CxHxW (default: the network's own)");
  describe->add_option("--classes", d.classes, "number of classes (default: the network's own)");
  describe->add_flag("--json", d.json, "print JSON instead of a table");
  describe->footer("Example: wrpn-train describe --network resnet34 --width 2 --wbits 2 --abits 4 --batch 128");
  return describe;
}

// The table `describe` prints (the JSON form is NetworkReportJson's).
void PrintDescribeTable(const NetworkReport& r) {
  const InputShape& in = r.input;
  std::cout << absl::StrFormat("%s  width %gx  weights %d bits  activations %d bits  input %dx%dx%d  %d classes\n\n",
                               r.network, r.width, r.wbits, r.abits, in.channels, in.height,
                               in.width, in.classes);
  std::cout << absl::StrFormat("%-24s %-6s %6s %6s %3s %2s %9s %10s %10s %5s %5s\n", "layer", "kind",
                               "in", "out", "k", "s", "output", "params", "FMAs", "wbits", "abits");
  for (const auto& l : r.spec.layers) {
    std::cout << absl::StrFormat("%-24s %-6s %6d %6d %3d %2d %9s %10s %10s %5d %5d\n", l.name,
                                 l.kind == LayerKind::kConv ? "conv" : "linear", l.in_channels,
                                 l.out_channels, l.kernel_h, l.stride,
                                 absl::StrFormat("%dx%d", l.out_h, l.out_w),
                                 FormatCount(l.ParamCount()), FormatCount(l.Fmas()),
                                 LayerWbits(l, r.wbits), LayerAbits(l, r.abits));
  }
  std::cout << absl::StrFormat("\nparameters %s (%lld)   FMAs/image %s   FMA ratio vs 1x %.4f\n",
                               FormatCount(r.spec.ParamCount()),
                               static_cast<long long>(r.spec.ParamCount()),
                               FormatCount(r.spec.Fmas()), r.cost.fma_ratio);
  std::cout << absl::StrFormat("compute cost vs 1x 32/32: uniform %.4f   first/last layers FP32 %.4f\n",
                               r.cost.cost_uniform, r.cost.cost_first_last_fp32);
  std::cout << absl::StrFormat("\n%6s %14s %14s %14s %14s %14s %9s\n", "batch", "activations",
                               "weights", "gradients", "training", "inference", "act share");
  for (const auto& [batch, f] : r.memory) {
    std::cout << absl::StrFormat("%6d %14s %14s %14s %14s %14s %8.1f%%\n", batch,
                                 FormatBytes(f.activation_bytes), FormatBytes(f.weight_bytes),
                                 FormatBytes(f.gradient_bytes), FormatBytes(f.training_bytes),
                                 FormatBytes(f.inference_bytes), 100 * f.activation_fraction);
  }
}

int RunDescribe(const DescribeArgs& a) {
  absl::StatusOr<InputShape> input = ParseInputShape(a.network, a.input);
  if (input.ok() && a.classes != 0) input->classes = a.classes;
  absl::StatusOr<NetworkReport> report =
      input.ok() ? BuildNetworkReport(a.network, a.width, a.wbits, a.abits, *input, a.batches)
                 : absl::StatusOr<NetworkReport>(input.status());
  if (!report.ok()) {
    std::cerr << "wrpn-train: " << report.status().message() << "\n";
    return kExitBadConfig;
  }
  if (a.measure) {
    return trainer::DescribeMeasured({a.network, a.width, a.wbits, a.abits, *input, a.device},
                                     a.batches, a.json);
  }
  if (a.json) {
    std::cout << NetworkReportJson(*report).dump(2) << "\n";
    return 0;
  }
  PrintDescribeTable(*report);
  return 0;
}

// Distributed: torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE); these flags override it.
struct DistFlags {
  int nproc = 0, nnodes = 1, node_rank = 0;
  std::optional<int> rank, world_size, local_rank, port;
  std::optional<std::string> addr;
  double rendezvous_timeout = 60, bucket_mb = 25;
};

void AddDistributedFlags(CLI::App& train, DistFlags& f) {
  train.add_option("--nproc", f.nproc, "start N local ranks (one per GPU, or N CPU processes)")
      ->check(CLI::Range(1, 1024));
  train.add_option("--nnodes", f.nnodes, "with --nproc: number of machines")->check(CLI::Range(1, 4096));
  train.add_option("--node-rank", f.node_rank, "with --nproc: this machine's index")->check(CLI::NonNegativeNumber);
  train.add_option("--master-addr", f.addr, "rank 0's address (env MASTER_ADDR)");
  train.add_option("--master-port", f.port, "rank 0's store port (env MASTER_PORT)")->check(CLI::Range(1, 65535));
  train.add_option("--rank", f.rank, "this process's rank (env RANK)")->check(CLI::NonNegativeNumber);
  train.add_option("--world-size", f.world_size, "number of ranks (env WORLD_SIZE)")->check(CLI::Range(1, 1 << 20));
  train.add_option("--local-rank", f.local_rank, "rank on this machine (env LOCAL_RANK)")->check(CLI::NonNegativeNumber);
  train.add_option("--rendezvous-timeout", f.rendezvous_timeout, "seconds to wait for all ranks")
      ->check(CLI::Range(0.1, 86400.0));
  train.add_option("--bucket-mb", f.bucket_mb, "gradient all-reduce bucket size in MB")->check(CLI::Range(0.001, 4096.0));
}

// --config's JSON object with the flags' values laid over it, parsed and validated.
absl::StatusOr<TrialConfig> LoadTrialConfig(const std::string& path, json overrides) {
  json config = json::object();
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError("--config: cannot open " + path);
    config = json::parse(in, nullptr, false);
    if (config.is_discarded()) return absl::InvalidArgumentError("--config: " + path + " is not valid JSON");
    if (!config.is_object()) return absl::InvalidArgumentError("--config: " + path + " must hold a JSON object");
  }
  if (overrides.contains("dataset") && config.contains("dataset") && config["dataset"].is_object()) {
    config["dataset"].update(overrides["dataset"]);
    overrides.erase("dataset");
  }
  config.update(overrides);
  return TrialConfigFromJson(config);
}

// --nproc: start the local ranks as children with the same arguments, less the launcher's own.
int LaunchRanks(const DistFlags& f, int argc, char** argv) {
  if (f.nnodes > 1 && !f.port && !std::getenv("MASTER_PORT")) {
    return FailConfig("--master-port: required with --nnodes > 1 (every machine must agree)");
  }
  if (f.node_rank >= f.nnodes) return FailConfig("--node-rank: must be < --nnodes");
  trainer::LaunchOptions launch;
  launch.nproc = f.nproc;
  launch.nnodes = f.nnodes;
  launch.node_rank = f.node_rank;
  if (f.addr) launch.master_addr = *f.addr;
  else if (const char* a = std::getenv("MASTER_ADDR")) launch.master_addr = a;
  if (f.port) launch.master_port = *f.port;
  else if (const char* p = std::getenv("MASTER_PORT")) launch.master_port = std::atoi(p);
  launch.executable = "/proc/self/exe";
  static const std::set<std::string> kLauncherFlags = {"--nproc", "--nnodes", "--node-rank",
                                                       "--master-addr", "--master-port"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const std::string name = a.substr(0, a.find('='));
    if (kLauncherFlags.count(name)) {
      if (a.find('=') == std::string::npos) ++i;  // skip the value too
      continue;
    }
    launch.rank_args.push_back(a);
  }
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) launch.executable.assign(exe, static_cast<size_t>(n));
  return trainer::LaunchLocalRanks(launch);
}

absl::StatusOr<int> EnvInt(const char* name, std::optional<int> flag, int fallback) {
  if (flag) return *flag;
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a non-negative integer, got '", v, "'"));
  }
  return static_cast<int>(x);
}

// This rank's place in the job: flags, else torchrun's variables, else a single rank.
absl::StatusOr<trainer::DistributedOptions> DistributedFromEnv(const DistFlags& f) {
  trainer::DistributedOptions dist;
  for (auto [target, name, flag, fallback] :
       {std::tuple<int*, const char*, std::optional<int>, int>{&dist.rank, "RANK", f.rank, 0},
        {&dist.world_size, "WORLD_SIZE", f.world_size, 1},
        {&dist.local_rank, "LOCAL_RANK", f.local_rank, 0},
        {&dist.local_world_size, "LOCAL_WORLD_SIZE", std::nullopt, 1},
        {&dist.master_port, "MASTER_PORT", f.port, 29500}}) {
    absl::StatusOr<int> v = EnvInt(name, flag, fallback);
    if (!v.ok()) return v.status();
    *target = *v;
  }
  if (f.addr) dist.master_addr = *f.addr;
  else if (const char* a = std::getenv("MASTER_ADDR"); a && *a) dist.master_addr = a;
  if (dist.world_size < 1) return absl::InvalidArgumentError("WORLD_SIZE: must be >= 1");
  if (dist.rank >= dist.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK: ", dist.rank, " is not below WORLD_SIZE ", dist.world_size));
  }
  dist.rendezvous_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.rendezvous_timeout * 1000));
  dist.bucket_bytes = static_cast<int64_t>(f.bucket_mb * 1024 * 1024);
  return dist;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wrpn-train: train one Wide Reduced-Precision Network trial"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wrpn-train 0.1.0");

  DescribeArgs d;
  CLI::App* describe = AddDescribeCommand(app, d);
  auto prepare = trainer::AddPrepareCommand(app);

  // ---- train
  auto* train = app.add_subcommand("train", "Train one trial; JSON-lines events on stdout");
  std::string config_path;
  train->add_option("--config", config_path, "trial config JSON file (flags override its fields)");
  json overrides = json::object();
  AddTrialConfigFlags(*train, overrides);
  bool print_config = false;
  train->add_flag("--print-config", print_config,
                  "print the trial config (--config with the flags applied) as JSON and exit");
  DistFlags dist;
  AddDistributedFlags(*train, dist);
  train->footer(
      "Example: wrpn-train train --network lenet5 --width 2 --wbits 2 --abits 4 --epochs 5\n"
      "Exit codes: 0 ok, 1 internal failure, 2 bad config, 3 data error, 4 interrupted "
      "(checkpointed), 5 rendezvous (a rank never arrived).");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc == 0) return 0;  // --help, --version
    if (train->parsed()) FailConfig(e.what());  // the agent reads stdout only
    return kExitBadConfig;
  }

  if (*prepare->app) return trainer::RunPrepareCommand(*prepare);
  if (*describe) {
    return RunDescribe(d);
  }

  // train
  absl::StatusOr<TrialConfig> trial = LoadTrialConfig(config_path, overrides);
  if (!trial.ok()) return FailConfig(std::string(trial.status().message()));
  if (print_config) {
    std::cout << TrialConfigToJson(*trial).dump(2) << "\n";
    return 0;
  }
  if (dist.nproc > 0) return LaunchRanks(dist, argc, argv);
  // A task of a Slurm step (srun): torchrun's variables from Slurm's, where unset (slurm_env.h).
  if (auto slurm = trainer::ApplySlurmEnvironment(); !slurm.ok())
    return FailConfig(std::string(slurm.status().message()));
  trainer::RunOptions options;
  absl::StatusOr<trainer::DistributedOptions> placed = DistributedFromEnv(dist);
  if (!placed.ok()) return FailConfig(std::string(placed.status().message()));
  options.distributed = *placed;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  options.stop = &g_stop;
  return trainer::RunTrial(
      *trial,
      [](const json& e) {
        std::cout << e.dump() << std::endl;
        if (const absl::StatusOr<TrainerEvent> t = ParseEvent(e); t.ok()) std::visit(PrintHuman{}, *t);
      },
      options);
}
