#pragma once
// The results grid as the CLI shows it: the coordinator's cells as GetGrid sends them (each with
// its change from the sweep's own 1x 32/32 cell and, joined on the server, the reference
// network's paper value and the paper's change from its 1x 32/32 baseline); rendered per network
// and width with rows = weight bits and columns = activation bits (the paper's layout), a
// compute-cost table in the layout of the paper's Table 3, and a long form for CSV. Plain values;
// thread-safe.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/output.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::client {

namespace pb = ::wrpn::v1;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class CostMode { kUniform, kFirstLastFp32 };

struct CellView {
  pb::GridCell cell;
  double top1 = kNaN, top1_std = kNaN, top5 = kNaN, best_top1 = kNaN;
  double cost = kNaN;   // by the chosen cost mode
  double delta = kNaN;  // the cell's our_delta
  std::string ref_network;  // the cell's paper_network; "" = no paper comparison
  std::string paper_table;
  double paper_top1 = kNaN, paper_delta = kNaN, paper_cost = kNaN;
  int seeds_done = 0;
};

struct GridView {
  int64_t sweep_id = 0;
  std::string sweep_name;  // for titles; may be empty
  std::vector<CellView> cells;  // the coordinator's order
  pb::GetGridResponse response;  // as the coordinator sent it, with only the chosen cells
  bool with_paper = false;  // asked for, and the coordinator has the paper's tables
  CostMode cost_mode = CostMode::kUniform;
};

struct GridOptions {
  std::string network;        // "" = all
  double width = 0;           // 0 = all
  bool paper = false;  // paper columns (when the coordinator has the tables)
  CostMode cost_mode = CostMode::kUniform;
};
absl::StatusOr<GridView> BuildGridView(const pb::GetGridResponse& grid, const GridOptions& opt);

enum class GridMetric { kTop1, kTop5, kCost };
// Per network and width: rows = weight bits, columns = activation bits.
std::vector<Table> GridTables(const GridView& v, GridMetric metric);
// Compute cost relative to the network's 1x 32/32, per network and width (paper Table 3 layout).
std::vector<Table> CostTables(const GridView& v);
// One row per cell (CSV).
Table GridLongTable(const GridView& v);

std::string TrialStateName(pb::TrialState s);
std::string SweepStateName(pb::SweepState s);
Color StateColor(const std::string& state);
// A pruned trial's or cell's top-1 at its rung: "pruned at epoch 2: 88.10".
std::string PrunedText(int64_t epoch, double top1);
std::string WidthLabel(double w);  // "1x", "1.5x"

}  // namespace wrpn::client
