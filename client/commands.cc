// RunCli: the `wrpn` command tree (CLI11). The global connection/output flags and the cost and
// footprint commands are here; the other commands are in files named for them (sweep, trial and
// logs, paper, worker and version: client/command_groups.h; grid and plot: grid_commands.h).
// Command bodies throw CliError; RunCli maps parse errors to exit 2 and prints "wrpn: <message>".
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/args.h"
#include "client/command_groups.h"
#include "client/cli.h"
#include "client/context.h"
#include "client/footprint.h"
#include "client/grid.h"
#include "client/grid_commands.h"
#include "client/output.h"
#include "client/plot.h"
#include "client/spec_file.h"
#include "common/network_report.h"
#include "common/network_spec.h"
#include "common/sweep_spec.h"
#include "common/yaml_json.h"

namespace wrpn::client {

const char* ClientVersion() { return WRPN_CLIENT_VERSION; }

std::function<void()> Runs(int& rc, std::function<int()> fn) {
  return [&rc, fn = std::move(fn)] { rc = fn(); };
}

// ---------------------------------------------------------------------------------------------
// Invocation

namespace {

// ---- cost / footprint (local, the shared model) ----

InputShape ParseInput(const std::string& network, const std::string& text) {
  absl::StatusOr<InputShape> in = ParseInputShape(network, text);
  if (!in.ok()) throw CliError{kExitUsage, std::string(in.status().message())};
  return *in;
}

void CheckModelArgs(const std::string& network, double width, int wbits, int abits) {
  if (!IsKnownNetwork(network))
    throw CliError{kExitUsage, absl::StrCat("--network: unknown network '", network, "' (known: ",
                                            absl::StrJoin(KnownNetworks(), ", "), ")")};
  if (!(width > 0 && width <= kMaxWidth))
    throw CliError{kExitUsage, absl::StrFormat("--width: %g is out of range (0, %g]", width, kMaxWidth)};
  if (!IsValidBits(wbits)) throw CliError{kExitUsage, absl::StrFormat("--wbits: %d is not 1..16 or 32", wbits)};
  if (!IsValidBits(abits)) throw CliError{kExitUsage, absl::StrFormat("--abits: %d is not 1..16 or 32", abits)};
}

std::string Count(int64_t n) {
  if (n >= 1000000000) return absl::StrFormat("%.2fG", n / 1e9);
  if (n >= 1000000) return absl::StrFormat("%.2fM", n / 1e6);
  if (n >= 1000) return absl::StrFormat("%.1fk", n / 1e3);
  return absl::StrCat(n);
}

int Cost(Invocation& inv, const std::string& network, double width, int wbits, int abits,
         const std::string& input_text, bool layers) {
  CheckModelArgs(network, width, wbits, abits);
  const InputShape input = ParseInput(network, input_text);
  absl::StatusOr<NetworkReport> r = BuildNetworkReport(network, width, wbits, abits, input);
  if (!r.ok()) throw CliError{kExitUsage, std::string(r.status().message())};
  const Format f = inv.format();
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson(NetworkReportJson(*r));
    return kExitOk;
  }
  Table t;
  t.columns = {"LAYER", "KIND", "IN", "OUT", "K", "S", "OUTPUT", "PARAMS", "FMAS", "WBITS", "ABITS"};
  t.right = {false, false, true, true, true, true, true, true, true, true, true};
  for (const auto& l : r->spec.layers) {
    t.rows.push_back({l.name, l.kind == LayerKind::kConv ? "conv" : "linear", absl::StrCat(l.in_channels),
                      absl::StrCat(l.out_channels), absl::StrCat(l.kernel_h), absl::StrCat(l.stride),
                      absl::StrFormat("%dx%d", l.out_h, l.out_w), Count(l.ParamCount()), Count(l.Fmas()),
                      absl::StrCat(LayerWbits(l, wbits)), absl::StrCat(LayerAbits(l, abits))});
  }
  Table s;
  s.title = absl::StrFormat("%s %s, weights %d bits, activations %d bits, input %dx%dx%d", network,
                            WidthLabel(width), wbits, abits, input.channels, input.height, input.width);
  s.columns = {"QUANTITY", "VALUE"};
  s.right = {false, true};
  s.rows = {{"parameters", Count(r->spec.ParamCount())},
            {"FMAs per image", Count(r->cost.fmas)},
            {"FMAs vs 1x", Fixed(r->cost.fma_ratio, 3)},
            {"compute cost vs 1x 32/32 (uniform)", Fixed(r->cost.cost_uniform, 3)},
            {"compute cost vs 1x 32/32 (first/last FP32)", Fixed(r->cost.cost_first_last_fp32, 3)}};
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(layers ? t : s);
    return kExitOk;
  }
  const bool md = f == Format::kMarkdown;
  inv.out() << (md ? RenderMarkdown(s) : RenderText(s, inv.color_on()));
  if (layers) inv.out() << "\n" << (md ? RenderMarkdown(t) : RenderText(t, inv.color_on()));
  return kExitOk;
}

int Footprint(Invocation& inv, const FootprintArgs& args, const std::string& input_text) {
  CheckModelArgs(args.network, args.width, args.wbits, args.abits);
  return RunFootprint(inv, args, ParseInput(args.network, input_text));
}

constexpr const char* kGlobalHelp = R"(wrpn: submit Wide Reduced-Precision Network sweeps to a wrpn coordinator, watch them, and read
the accuracy / compute-cost grid laid out like the paper's tables.

Connection (highest precedence first): flags, then WRPN_ADDR / WRPN_TOKEN / WRPN_TLS_CA, then
$XDG_CONFIG_HOME/wrpn/config.yaml (default ~/.config/wrpn/config.yaml) with keys addr, token,
tls, tls_ca, connect_timeout.)";

constexpr const char* kGlobalFooter = R"(
Examples:
  wrpn sweep submit examples/sweeps/fashion-quick.yaml --watch
  wrpn sweep list
  wrpn grid 1 --paper
  wrpn grid 1 -o csv > grid.csv
  wrpn plot 1 --out pareto.png
  wrpn cost --network resnet34 --width 2 --wbits 2 --abits 4

Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 not found, 4 authentication or permission,
5 coordinator unreachable.)";

void AddGlobalFlags(CLI::App& app, Invocation& inv) {
  app.add_option("--addr", inv.flags.addr, "coordinator address host:port (default 127.0.0.1:7070)");
  app.add_option("--token", inv.flags.token, "bearer token (viewer for reads, admin for submit/cancel/retry)");
  app.add_option("--tls-ca", inv.flags.tls_ca, "PEM CA file: connect with TLS and trust this CA");
  app.add_flag("--tls", inv.flags.tls, "connect with TLS using the system roots");
  app.add_option("--config", inv.flags.config, "config file (default $XDG_CONFIG_HOME/wrpn/config.yaml)");
  app.add_option("--connect-timeout", inv.flags.connect_timeout_s, "seconds to wait for the coordinator (default 3)");
  app.add_option("-o,--output", inv.output, "output format: table, json, yaml, csv or markdown");
  app.add_option("--color", inv.color, "auto (on a terminal, unless NO_COLOR is set), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
}

// Parses `args` and runs the chosen command's callback. An exit code when RunCli must return it
// now (help shown, a usage error, a CliError); nullopt when the command ran (its code is in rc).
std::optional<int> Parse(CLI::App& app, const std::vector<std::string>& args, CliEnv& env) {
  CheckIdArguments(&app);
  if (auto unknown = UnknownCommand(app, args)) {
    *env.err << "wrpn: " << *unknown << "\n";
    return kExitUsage;
  }
  std::vector<const char*> argv{"wrpn"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp& e) {
    app.exit(e, *env.out, *env.err);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e, *env.out, *env.err);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    *env.err << "wrpn: " << e.what() << "\nRun 'wrpn --help' (or 'wrpn COMMAND --help') for usage.\n";
    return kExitUsage;
  } catch (const CliError& e) {
    *env.err << "wrpn: " << e.message << "\n";
    return e.code;
  }
  return std::nullopt;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, CliEnv& env) {
  Invocation inv(&env);
  CLI::App app{kGlobalHelp, "wrpn"};
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(kGlobalFooter);
  app.get_formatter()->column_width(34);
  AddGlobalFlags(app, inv);
  int rc = kExitOk;
  auto run = [&](std::function<int()> fn) { return Runs(rc, std::move(fn)); };

  SweepCommands sweep_cmds;
  sweep_cmds.Add(app, inv, rc);
  TrialCommands trial_cmds;
  CLI::App* trial = trial_cmds.Add(app, inv, rc);
  LogCommands log_cmds;
  log_cmds.Add(app, trial, inv, rc);
  AddGridCommand(app, inv, &rc);

  PaperCommand paper_cmd;
  paper_cmd.Add(app, inv, rc);

  // cost / footprint
  std::string network = "resnet34", input_text;
  double width = 1;
  int wbits = 32, abits = 32;
  bool layers = false;
  auto* cost = app.add_subcommand("cost", "compute cost of a network at a width and bits (local, the shared model)");
  cost->add_option("--network", network, "lenet5, resnet20, resnet18, resnet34, resnet50, alexnet or inception_bn")->capture_default_str();
  cost->add_option("--width", width, "width multiplier")->capture_default_str();
  cost->add_option("--wbits", wbits, "weight bits (1..16 or 32)")->capture_default_str();
  cost->add_option("--abits", abits, "activation bits (1..16 or 32)")->capture_default_str();
  cost->add_option("--input", input_text, "input CxHxW (default: the network's own)");
  cost->add_flag("--layers", layers, "also print the per-layer table (CSV: only the layers)");
  cost->footer("\nCompute cost = FMAs x (weight bits + activation bits), relative to the same network at 1x and\n"
               "32/32 (the paper's Table 3 rule), and with the first and last layer kept at FP32.\n\n"
               "Examples:\n  wrpn cost --network resnet34 --width 2 --wbits 2 --abits 4\n"
               "  wrpn cost --network alexnet --width 2 --wbits 4 --abits 4 --layers\n  wrpn cost --network lenet5 -o json");
  cost->callback(run([&] { return Cost(inv, network, width, wbits, abits, input_text, layers); }));

  std::vector<int> batches;
  std::string fp_plot;
  auto* fp = app.add_subcommand("footprint", "training memory by batch size: activations vs weights (the paper's Figure 1)");
  fp->add_option("--network", network, "network")->capture_default_str();
  fp->add_option("--width", width, "width multiplier")->capture_default_str();
  fp->add_option("--wbits", wbits, "weight bits")->capture_default_str();
  fp->add_option("--abits", abits, "activation bits")->capture_default_str();
  fp->add_option("--batch", batches, "batch sizes, comma separated (default 1,32,64,128,256)")->delimiter(',');
  fp->add_option("--plot", fp_plot, "also draw stacked bars to FILE.png or FILE.svg (gnuplot)");
  std::string fp_measured;
  fp->add_option("--input", input_text, "input CxHxW (default: the network's own)");
  fp->add_option("--measured", fp_measured, "mark measured peaks from `wrpn-train describe --measure --json` output");
  fp->footer("\nExamples:\n  wrpn footprint --network resnet34 --batch 1,32,128,256\n"
             "  wrpn footprint --network alexnet --batch 1,64,256 --plot fig1.png\n  wrpn footprint --network resnet34 --abits 4 --wbits 4 -o csv");
  fp->callback(run([&] { return Footprint(inv, {network, width, wbits, abits, batches, fp_plot, fp_measured}, input_text); }));

  AddPlotCommand(app, inv, &rc);

  WorkerCommands worker_cmds;
  worker_cmds.Add(app, inv, rc);

  if (std::optional<int> stop = Parse(app, args, env)) return *stop;
  return rc;
}

}  // namespace wrpn::client
