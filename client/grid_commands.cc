#include "client/grid_commands.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/grid.h"
#include "client/output.h"
#include "client/proto_json.h"
#include "client/plot.h"
#include "client/scheme_grid.h"

namespace wrpn::client {
namespace {

struct GridFlags {
  std::string network, metric = "top1", paper_ref = "auto", cost_mode = "uniform";
  std::string compare;  // "" or "scheme"
  double width = 0;
  bool paper = false;
};

CostMode ParseCostMode(const std::string& s) {
  if (s == "uniform") return CostMode::kUniform;
  if (s == "first-last-fp32" || s == "first_last_fp32") return CostMode::kFirstLastFp32;
  throw CliError{kExitUsage, "--cost-mode: expected uniform or first-last-fp32, got '" + s + "'"};
}

// The coordinator refuses an unknown reference naming its field; the user typed the flag.
[[noreturn]] void ThrowGridError(Connection& c, const grpc::Status& st, const std::string& what) {
  constexpr const char* kField = "paper_ref: ";
  if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
      absl::StartsWith(st.error_message(), kField)) {
    throw CliError{kExitUsage,
                   absl::StrCat("--paper-ref: ", st.error_message().substr(strlen(kField)))};
  }
  c.Throw(st, what);
}

GridView FetchGrid(Invocation& inv, int64_t id, const GridFlags& g, bool want_paper) {
  const CostMode cost_mode = ParseCostMode(g.cost_mode);
  Connection& c = inv.conn();
  pb::GetGridRequest req;
  req.set_sweep_id(id);
  req.set_paper_ref(g.paper_ref);
  pb::GetGridResponse grid;
  const std::string what = absl::StrCat("grid of sweep ", id);
  if (grpc::Status st = c.stub().GetGrid(c.Context().get(), req, &grid); !st.ok())
    ThrowGridError(c, st, what);
  if (want_paper && grid.paper_version().empty()) {
    inv.err() << "wrpn: warning: the coordinator has no paper tables (start it with "
                 "--paper-tables); showing our numbers only\n";
  }
  auto v = BuildGridView(grid, {g.network, g.width, want_paper, cost_mode});
  if (!v.ok()) {
    throw CliError{v.status().code() == absl::StatusCode::kNotFound ? kExitNotFound : kExitUsage,
                   std::string(v.status().message())};
  }
  return *std::move(v);
}

GridMetric ParseMetric(const std::string& m) {
  if (m == "top1") return GridMetric::kTop1;
  if (m == "top5") return GridMetric::kTop5;
  if (m == "cost") return GridMetric::kCost;
  throw CliError{kExitUsage, "--metric: expected top1, top5 or cost, got '" + m + "'"};
}

int Grid(Invocation& inv, int64_t id, const GridFlags& g) {
  const GridMetric metric = ParseMetric(g.metric);
  const Format f = inv.format();
  const GridView v = FetchGrid(inv, id, g, g.paper);
  if (f == Format::kJson || f == Format::kYaml) {
    inv.EmitJson(ProtoJson(v.response, /*print_defaults=*/true));  // as /api/v1 answers
    return kExitOk;
  }
  if (f == Format::kCsv) {
    inv.out() << RenderCsv(GridLongTable(v));
    return kExitOk;
  }
  std::vector<Table> tables;
  if (!g.compare.empty() && g.compare != "scheme")
    throw CliError{kExitUsage, "--compare: expected scheme, got '" + g.compare + "'"};
  if (g.compare == "scheme" && metric != GridMetric::kCost) tables = SchemeCompareTables(v, metric);
  else if (metric != GridMetric::kCost) tables = GridTablesPerScheme(v, metric);
  if (metric != GridMetric::kTop5) {
    auto cost = CostTables(v);
    tables.insert(tables.end(), cost.begin(), cost.end());
  }
  const bool md = f == Format::kMarkdown;
  if (md) inv.out() << "### Sweep " << id << "\n\n";
  else inv.out() << Paint(absl::StrFormat("Sweep %d", id), Color::kBold, inv.color_on()) << "\n\n";
  for (size_t i = 0; i < tables.size(); ++i) {
    if (i) inv.out() << "\n";
    inv.out() << (md ? RenderMarkdown(tables[i]) : RenderText(tables[i], inv.color_on()));
  }
  return kExitOk;
}

struct PlotFlags {
  std::string out, kind = "pareto", y = "delta", script_out;
  bool no_paper = false;
  GridFlags grid;
};

std::string SweepName(Connection& c, int64_t id) {
  pb::GetSweepRequest req;
  req.set_sweep_id(id);
  pb::GetSweepResponse resp;
  c.Check(c.stub().GetSweep(c.Context().get(), req, &resp), absl::StrCat("sweep ", id));
  return resp.sweep().name();
}

int Plot(Invocation& inv, int64_t id, const PlotFlags& p) {
  if (p.kind != "pareto" && p.kind != "grid")
    throw CliError{kExitUsage, "--kind: expected pareto or grid, got '" + p.kind + "'"};
  if (p.y != "delta" && p.y != "top1")
    throw CliError{kExitUsage, "--y: expected delta or top1, got '" + p.y + "'"};
  const std::string gp = inv.env().env("WRPN_GNUPLOT").value_or("gnuplot");
  auto term = TerminalFor(p.out, GnuplotHasPngcairo(gp));
  if (!term.ok()) throw CliError{kExitUsage, std::string(term.status().message())};
  GridView v = FetchGrid(inv, id, p.grid, !p.no_paper);
  v.sweep_name = SweepName(inv.conn(), id);
  std::string script;
  size_t ours = 0, theirs = 0;
  if (p.kind == "pareto") {
    const ParetoY py = p.y == "delta" ? ParetoY::kDelta : ParetoY::kTop1;
    const auto pts = ParetoPoints(v, py);
    for (const auto& pt : pts) (pt.series.rfind("ours", 0) == 0 ? ours : theirs)++;
    if (ours == 0)
      throw CliError{kExitFailed, absl::StrFormat(
          "sweep %d has no finished cells to plot%s", id,
          py == ParetoY::kDelta ? " (the change from 1x 32/32 needs a finished 1x w32/a32 cell; try --y top1)" : "")};
    script = ParetoScript(v, pts, py, *term, p.out);
  } else {
    script = GridHeatmapScript(v, p.y == "delta", *term, p.out);
  }
  if (!p.script_out.empty()) {
    std::ofstream f(p.script_out);
    f << script;
    if (!f) throw CliError{kExitFailed, "--script: cannot write '" + p.script_out + "'"};
  }
  if (auto st = RunGnuplot(gp, script); !st.ok()) throw CliError{kExitFailed, std::string(st.message())};
  if (p.kind == "pareto")
    inv.out() << absl::StrFormat("wrote %s: %d of our cells, %d paper cells\n", p.out, ours, theirs);
  else
    inv.out() << absl::StrFormat("wrote %s\n", p.out);
  return kExitOk;
}

}  // namespace

void AddGridCommand(CLI::App& app, Invocation& inv, int* rc) {
  auto id = std::make_shared<int64_t>(0);
  auto gf = std::make_shared<GridFlags>();
  auto* grid = app.add_subcommand("grid", "the results grid in the paper's layout, with the compute-cost table");
  grid->add_option("ID", *id, "sweep id")->required();
  grid->add_option("--network", gf->network, "only this network");
  grid->add_option("--width", gf->width, "only this width multiplier");
  grid->add_option("--metric", gf->metric, "top1 (default: top-1 grids and the cost table), top5, or cost");
  grid->add_flag("--paper", gf->paper, "beside each top-1: our change from our 1x 32/32 cell and the paper's change from its baseline");
  grid->add_option("--paper-ref", gf->paper_ref,
                   "paper table to compare with: auto (by family: lenet5 and alexnet -> AlexNet Tables 1-3, "
                   "resnet* -> Table 4, inception_bn -> Table 5), alexnet, resnet34, inception_bn, table1..table5, none");
  grid->add_option("--compare", gf->compare, "scheme: the quantization schemes side by side per cell (same bits, same cost)");
  grid->add_option("--cost-mode", gf->cost_mode, "uniform (every layer at the cell's bits, the paper's Table 3 rule) or first-last-fp32");
  grid->footer(
      "\nPer network and width: rows = weight bits, columns = activation bits, each cell the measured\n"
      "top-1 (mean over seeds, ±std when there are several). With --paper a cell reads\n"
      "  `88.10  -0.90  [-2.90]` = our top-1, our change from our 1x w32/a32, [the paper's change from\n"
      "its own 1x w32/a32 at the same width and bits]. Absolute accuracies on different datasets are not\n"
      "comparable; the changes are. lenet5 sweeps are compared with the AlexNet tables (Tables 1 and 2)\n"
      "by default; use --paper-ref to pick another. CSV and JSON give one row per cell.\n\n"
      "Examples:\n  wrpn grid 3\n  wrpn grid 3 --paper\n  wrpn grid 3 --paper -o markdown\n  wrpn grid 3 -o csv > grid.csv\n"
      "  wrpn grid 3 --metric cost --width 2\n  wrpn grid 3 --paper --paper-ref resnet34");
  grid->callback([&inv, rc, id, gf] { *rc = Grid(inv, *id, *gf); });
}

void AddPlotCommand(CLI::App& app, Invocation& inv, int* rc) {
  auto id = std::make_shared<int64_t>(0);
  auto pf = std::make_shared<PlotFlags>();
  auto* plot = app.add_subcommand("plot", "plot a sweep with gnuplot: Pareto (top-1 vs compute cost) or grid heat map");
  plot->add_option("ID", *id, "sweep id")->required();
  plot->add_option("--out", pf->out, "output file, .png or .svg")->required();
  plot->add_option("--kind", pf->kind, "pareto (default) or grid");
  plot->add_option("--y", pf->y, "delta: top-1 change from the 1x 32/32 cell (default; the paper's points are comparable), "
                                 "top1: absolute top-1 (our points only)");
  plot->add_flag("--no-paper", pf->no_paper, "leave out the paper's points");
  plot->add_option("--paper-ref", pf->grid.paper_ref, "as for `wrpn grid`");
  plot->add_option("--network", pf->grid.network, "only this network");
  plot->add_option("--cost-mode", pf->grid.cost_mode, "uniform or first-last-fp32");
  plot->add_option("--script", pf->script_out, "also save the gnuplot script to this file");
  plot->footer("\nPareto: x = compute cost relative to 1x 32/32 (log scale), y = top-1 change from the 1x 32/32\n"
               "cell; our cells are filled circles with a solid Pareto front, the paper's cells at the same\n"
               "widths and bits are open triangles with a dashed front; labels read `width w/a`.\n"
               "Needs gnuplot (apt-get install gnuplot-nox) or WRPN_GNUPLOT.\n\n"
               "Examples:\n  wrpn plot 3 --out pareto.png\n  wrpn plot 3 --out grid.svg --kind grid\n"
               "  wrpn plot 3 --out ours.png --y top1 --no-paper");
  plot->callback([&inv, rc, id, pf] { *rc = Plot(inv, *id, *pf); });
}

}  // namespace wrpn::client
