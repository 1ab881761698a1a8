#pragma once
// Plots through gnuplot (a separate process fed a generated script): the Pareto plot of top-1
// against compute cost, the grid as heat maps, and the memory footprint by batch size (the shape
// of the paper's Figure 1). Script builders are pure; RunGnuplot spawns the process.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/grid.h"
#include "common/network_spec.h"

namespace wrpn::client {

// The terminal line for an output file: .png (pngcairo when available, else png) or .svg.
absl::StatusOr<std::string> TerminalFor(const std::string& out_path, bool have_pngcairo);

enum class ParetoY { kDelta, kTop1 };

struct ParetoPoint {
  std::string series;  // "ours: lenet5", "paper: alexnet"
  std::string label;   // "2x 4/2"
  double cost = 0;
  double y = 0;
  bool front = false;  // on its series' Pareto front
};

// Our cells and (when the view has paper numbers and y is the change from the baseline) the
// paper's cells at the same widths and bits, costed with the paper's number or, where the paper
// gives none, our cost model of the reference network. Marks each series' Pareto front.
std::vector<ParetoPoint> ParetoPoints(const GridView& v, ParetoY y);
std::string ParetoScript(const GridView& v, const std::vector<ParetoPoint>& pts, ParetoY y,
                         const std::string& terminal, const std::string& out_path);
std::string GridHeatmapScript(const GridView& v, bool delta, const std::string& terminal,
                              const std::string& out_path);
std::string FootprintScript(const std::string& title, const std::vector<FootprintReport>& rows,
                            const std::string& terminal, const std::string& out_path);

// Runs `gnuplot` (or $WRPN_GNUPLOT) on the script; errors carry gnuplot's stderr.
absl::Status RunGnuplot(const std::string& gnuplot, const std::string& script);
bool GnuplotHasPngcairo(const std::string& gnuplot);

}  // namespace wrpn::client
