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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wrpn-train: train one Wide Reduced-Precision Network trial"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wrpn-train 0.1.0");

  // ---- describe
  auto* describe = app.add_subcommand(
      "describe", "Per-layer FMAs, parameters, compute cost and memory footprint of a network");
  std::string d_network = "resnet34";
  double d_width = 1.0;
  int d_wbits = 32, d_abits = 32, d_classes = 0;
  std::vector<int> d_batches = {128};
  std::string d_input;
  bool d_json = false, d_measure = false;
  std::string d_device = "cpu";
  describe->add_flag("--measure", d_measure, "also run one training step per batch and measure its peak memory");
  describe->add_option("--device", d_device, "with --measure: cpu|cuda|cuda:N");
  describe->add_option("--network", d_network, "lenet5|resnet20|resnet18|resnet34|resnet50|alexnet|inception_bn")
      ->required();
  describe->add_option("--width", d_width, "width multiplier (e.g. 1, 1.3, 2)");
  describe->add_option("--wbits", d_wbits, "weight bits: 1..16 or 32");
  describe->add_option("--abits", d_abits, "activation bits: 1..16 or 32");
  describe->add_option("--batch", d_batches, "batch size(s) for the memory model")->delimiter(',');
  describe->add_option("--input", d_input, "input as CxHxW (default: the network's own)");
  describe->add_option("--classes", d_classes, "number of classes (default: the network's own)");
  describe->add_flag("--json", d_json, "print JSON instead of a table");
  describe->footer("Example: wrpn-train describe --network resnet34 --width 2 --wbits 2 --abits 4 --batch 128");

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
  // Distributed: torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
  // LOCAL_WORLD_SIZE); these flags override it.
  int nproc = 0, nnodes = 1, node_rank = 0;
  std::optional<int> rank_flag, world_flag, local_rank_flag, port_flag;
  std::optional<std::string> addr_flag;
  double rendezvous_timeout = 60, bucket_mb = 25;
  train->add_option("--nproc", nproc, "start N local ranks (one per GPU, or N CPU processes)")
      ->check(CLI::Range(1, 1024));
  train->add_option("--nnodes", nnodes, "with --nproc: number of machines")->check(CLI::Range(1, 4096));
  train->add_option("--node-rank", node_rank, "with --nproc: this machine's index")->check(CLI::NonNegativeNumber);
  train->add_option("--master-addr", addr_flag, "rank 0's address (env MASTER_ADDR)");
  train->add_option("--master-port", port_flag, "rank 0's store port (env MASTER_PORT)")->check(CLI::Range(1, 65535));
  train->add_option("--rank", rank_flag, "this process's rank (env RANK)")->check(CLI::NonNegativeNumber);
  train->add_option("--world-size", world_flag, "number of ranks (env WORLD_SIZE)")->check(CLI::Range(1, 1 << 20));
  train->add_option("--local-rank", local_rank_flag, "rank on this machine (env LOCAL_RANK)")->check(CLI::NonNegativeNumber);
  train->add_option("--rendezvous-timeout", rendezvous_timeout, "seconds to wait for all ranks")
      ->check(CLI::Range(0.1, 86400.0));
  train->add_option("--bucket-mb", bucket_mb, "gradient all-reduce bucket size in MB")->check(CLI::Range(0.001, 4096.0));
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
    InputShape input = DefaultInput(d_network);
    if (!d_input.empty()) {
      char x1 = 0, x2 = 0;
      std::istringstream in(d_input);
      if (!(in >> input.channels >> x1 >> input.height >> x2 >> input.width) || x1 != 'x' ||
          x2 != 'x' || !in.eof()) {
        std::cerr << "wrpn-train: --input: expected CxHxW (e.g. 3x224x224), got '" << d_input << "'\n";
        return kExitBadConfig;
      }
    }
    if (d_classes != 0) input.classes = d_classes;
    auto spec = DescribeNetwork(d_network, d_width, input);
    if (!spec.ok()) {
      std::cerr << "wrpn-train: " << spec.status().message() << "\n";
      return kExitBadConfig;
    }
    auto cost = ComputeCost(d_network, d_width, d_wbits, d_abits, input);
    if (!cost.ok()) {
      std::cerr << "wrpn-train: " << cost.status().message() << "\n";
      return kExitBadConfig;
    }
    for (int b : d_batches) {
      if (b < 1) {
        std::cerr << "wrpn-train: --batch: every batch size must be >= 1, got " << b << "\n";
        return kExitBadConfig;
      }
    }
    if (d_measure) {
      return trainer::DescribeMeasured({d_network, d_width, d_wbits, d_abits, input, d_device}, d_batches, d_json);
    }
    json layers = json::array();
    for (const auto& l : spec->layers) {
      layers.push_back({{"name", l.name},
                        {"kind", l.kind == LayerKind::kConv ? "conv" : "linear"},
                        {"in_channels", l.in_channels},
                        {"out_channels", l.out_channels},
                        {"kernel", l.kernel_h},
                        {"stride", l.stride},
                        {"output", {l.out_h, l.out_w}},
                        {"params", l.ParamCount()},
                        {"fmas", l.Fmas()},
                        {"wbits", l.quantized ? d_wbits : 32},
                        {"abits_in", l.input_quantized ? d_abits : 32}});
    }
    json memory = json::array();
    for (int b : d_batches) {
      const auto f = ComputeFootprint(*spec, d_wbits, d_abits, b);
      memory.push_back({{"batch", b},
                        {"activation_bytes", f.activation_bytes},
                        {"weight_bytes", f.weight_bytes},
                        {"gradient_bytes", f.gradient_bytes},
                        {"training_bytes", f.training_bytes},
                        {"inference_bytes", f.inference_bytes},
                        {"activation_fraction", f.activation_fraction}});
    }
    if (d_json) {
      json out = {{"network", d_network},
                  {"width", d_width},
                  {"wbits", d_wbits},
                  {"abits", d_abits},
                  {"input", {input.channels, input.height, input.width}},
                  {"classes", input.classes},
                  {"layers", layers},
                  {"params", spec->ParamCount()},
                  {"fmas", spec->Fmas()},
                  {"baseline_fmas", cost->baseline_fmas},
                  {"fma_ratio", cost->fma_ratio},
                  {"cost_uniform", cost->cost_uniform},
                  {"cost_first_last_fp32", cost->cost_first_last_fp32},
                  {"memory", memory}};
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::cout << absl::StrFormat("%s  width %gx  weights %d bits  activations %d bits  input %dx%dx%d  %d classes\n\n",
                                 d_network, d_width, d_wbits, d_abits, input.channels, input.height,
                                 input.width, input.classes);
    std::cout << absl::StrFormat("%-24s %-6s %6s %6s %3s %2s %9s %10s %10s %5s %5s\n", "layer", "kind",
                                 "in", "out", "k", "s", "output", "params", "FMAs", "wbits", "abits");
    for (const auto& l : spec->layers) {
      std::cout << absl::StrFormat("%-24s %-6s %6d %6d %3d %2d %9s %10s %10s %5d %5d\n", l.name,
                                   l.kind == LayerKind::kConv ? "conv" : "linear", l.in_channels,
                                   l.out_channels, l.kernel_h, l.stride,
                                   absl::StrFormat("%dx%d", l.out_h, l.out_w),
                                   FormatCount(l.ParamCount()), FormatCount(l.Fmas()),
                                   l.quantized ? d_wbits : 32, l.input_quantized ? d_abits : 32);
    }
    std::cout << absl::StrFormat("\nparameters %s (%lld)   FMAs/image %s   FMA ratio vs 1x %.4f\n",
                                 FormatCount(spec->ParamCount()),
                                 static_cast<long long>(spec->ParamCount()),
                                 FormatCount(spec->Fmas()), cost->fma_ratio);
    std::cout << absl::StrFormat("compute cost vs 1x 32/32: uniform %.4f   first/last layers FP32 %.4f\n",
                                 cost->cost_uniform, cost->cost_first_last_fp32);
    std::cout << absl::StrFormat("\n%6s %14s %14s %14s %14s %14s %9s\n", "batch", "activations",
                                 "weights", "gradients", "training", "inference", "act share");
    for (const auto& m : memory) {
      std::cout << absl::StrFormat("%6d %14s %14s %14s %14s %14s %8.1f%%\n", m["batch"].get<int>(),
                                   FormatBytes(m["activation_bytes"]), FormatBytes(m["weight_bytes"]),
                                   FormatBytes(m["gradient_bytes"]), FormatBytes(m["training_bytes"]),
                                   FormatBytes(m["inference_bytes"]),
                                   100 * m["activation_fraction"].get<double>());
    }
    return 0;
  }

  // train
  json config = json::object();
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) return FailConfig("--config: cannot open " + config_path);
    config = json::parse(in, nullptr, false);
    if (config.is_discarded()) return FailConfig("--config: " + config_path + " is not valid JSON");
    if (!config.is_object()) return FailConfig("--config: " + config_path + " must hold a JSON object");
  }
  if (overrides.contains("dataset") && config.contains("dataset") && config["dataset"].is_object()) {
    config["dataset"].update(overrides["dataset"]);
    overrides.erase("dataset");
  }
  config.update(overrides);
  auto trial = TrialConfigFromJson(config);
  if (!trial.ok()) return FailConfig(std::string(trial.status().message()));
  if (print_config) {
    std::cout << TrialConfigToJson(*trial).dump(2) << "\n";
    return 0;
  }

  if (nproc > 0) {
    if (nnodes > 1 && !port_flag && !std::getenv("MASTER_PORT")) {
      return FailConfig("--master-port: required with --nnodes > 1 (every machine must agree)");
    }
    if (node_rank >= nnodes) return FailConfig("--node-rank: must be < --nnodes");
    trainer::LaunchOptions launch;
    launch.nproc = nproc;
    launch.nnodes = nnodes;
    launch.node_rank = node_rank;
    if (addr_flag) launch.master_addr = *addr_flag;
    else if (const char* a = std::getenv("MASTER_ADDR")) launch.master_addr = a;
    if (port_flag) launch.master_port = *port_flag;
    else if (const char* p = std::getenv("MASTER_PORT")) launch.master_port = std::atoi(p);
    launch.executable = "/proc/self/exe";
    // The ranks get the same arguments without the launcher's own flags.
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

  // A task of a Slurm step (srun): torchrun's variables from Slurm's, where unset (slurm_env.h).
  if (auto slurm = trainer::ApplySlurmEnvironment(); !slurm.ok())
    return FailConfig(std::string(slurm.status().message()));
  trainer::RunOptions options;
  auto env_int = [](const char* name, std::optional<int> flag, int fallback) -> absl::StatusOr<int> {
    if (flag) return *flag;
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (*end != '\0' || x < 0 || x > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": expected a non-negative integer, got '", v, "'"));
    }
    return static_cast<int>(x);
  };
  trainer::DistributedOptions& dist = options.distributed;
  for (auto [target, name, flag, fallback] :
       {std::tuple<int*, const char*, std::optional<int>, int>{&dist.rank, "RANK", rank_flag, 0},
        {&dist.world_size, "WORLD_SIZE", world_flag, 1},
        {&dist.local_rank, "LOCAL_RANK", local_rank_flag, 0},
        {&dist.local_world_size, "LOCAL_WORLD_SIZE", std::nullopt, 1},
        {&dist.master_port, "MASTER_PORT", port_flag, 29500}}) {
    auto v = env_int(name, flag, fallback);
    if (!v.ok()) return FailConfig(std::string(v.status().message()));
    *target = *v;
  }
  if (addr_flag) dist.master_addr = *addr_flag;
  else if (const char* a = std::getenv("MASTER_ADDR"); a && *a) dist.master_addr = a;
  if (dist.world_size < 1) return FailConfig("WORLD_SIZE: must be >= 1");
  if (dist.rank >= dist.world_size) {
    return FailConfig(absl::StrCat("RANK: ", dist.rank, " is not below WORLD_SIZE ", dist.world_size));
  }
  dist.rendezvous_timeout = std::chrono::milliseconds(static_cast<int64_t>(rendezvous_timeout * 1000));
  dist.bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);

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
