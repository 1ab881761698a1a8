#pragma once
// Plots through gnuplot (a separate process fed a generated script): the Pareto plot of top-1
// against compute cost, the grid as heat maps, and the memory footprint by batch size (the shape
// of the paper's Figure 1). Script builders are pure; RunGnuplot spawns the process.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/grid.h"
#include "common/memory_model.h"

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
  // A Pareto-pruned sweep's pruned cell, at its top-1 at the rung it was pruned at (a hollow
  // marker in its own series "... pruned at a rung", never on a front).
  bool pruned = false;
};

// Our cells and (when the view has paper numbers and y is the change from the baseline) the
// paper's cells at the same widths and bits, costed with the paper's number or, where the paper
// gives none, our cost model of the reference network. Marks each series' Pareto front.
std::vector<ParetoPoint> ParetoPoints(const GridView& v, ParetoY y);
std::string ParetoScript(const GridView& v, const std::vector<ParetoPoint>& pts, ParetoY y,
                         const std::string& terminal, const std::string& out_path);
std::string GridHeatmapScript(const GridView& v, bool delta, const std::string& terminal,
                              const std::string& out_path);
// One batch size of `wrpn footprint --plot`: both accountings of common/memory_model.h and, where
// one was measured (wrpn-train describe --measure), the measured peak (NaN when none).
struct FootprintBar {
  int batch = 1;
  FootprintReport paper, autograd;
  double measured_bytes = 0;
};
// The paper's Figure 1 layout: bars of activations stacked on weights by batch size, the paper's
// accounting on the left, the autograd accounting on the right with the measured peaks marked.
std::string FootprintScript(const std::string& title, const std::vector<FootprintBar>& rows,
                            const std::string& terminal, const std::string& out_path);

// Runs `gnuplot` (or $WRPN_GNUPLOT) on the script; errors carry gnuplot's stderr.
absl::Status RunGnuplot(const std::string& gnuplot, const std::string& script);
bool GnuplotHasPngcairo(const std::string& gnuplot);

}  // namespace wrpn::client
