#pragma once
// The results grid as the CLI shows it: the coordinator's cells joined with the paper's reference
// numbers (the reference table chosen by network family), each cell's change from the sweep's own
// 1x 32/32 cell and the paper's change from its 1x 32/32 baseline; rendered per network and width
// with rows = weight bits and columns = activation bits (the paper's layout), a compute-cost table
// in the layout of the paper's Table 3, and a long form for CSV/JSON. Plain values; thread-safe.
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "client/output.h"
#include "nlohmann/json.hpp"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::client {

namespace pb = ::wrpn::v1;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The paper's numbers indexed by (network, width, wbits, abits).
struct PaperEntry {
  std::string table;  // table1 ... table5
  double top1 = kNaN;
  double cost = kNaN;
};
class PaperIndex {
 public:
  explicit PaperIndex(const pb::GetPaperTablesResponse& tables);
  const PaperEntry* Find(const std::string& network, double width, int wbits, int abits) const;
  // The network's 1x 32/32 entry (its baseline), or null.
  const PaperEntry* Baseline(const std::string& network) const;
  std::vector<std::tuple<std::string, double, int, int, PaperEntry>> All() const;

 private:
  std::map<std::tuple<std::string, double, int, int>, PaperEntry> cells_;
};

// The paper network whose tables a sweep network is compared with: lenet5 and alexnet -> alexnet
// (Tables 1-3), resnet* -> resnet34 (Table 4), inception_bn -> inception_bn (Table 5).
// `override_ref`: "auto" (by family), "none", a paper network name, or table1..table5.
absl::StatusOr<std::string> PaperReference(const std::string& network,
                                           const std::string& override_ref);
// "Tables 1-3 (AlexNet)", "Table 4 (ResNet-34)", "Table 5 (Inception-BN)".
std::string PaperReferenceLabel(const std::string& ref_network);

enum class CostMode { kUniform, kFirstLastFp32 };

struct CellView {
  pb::GridCell cell;
  double top1 = kNaN, top1_std = kNaN, top5 = kNaN, best_top1 = kNaN;
  double cost = kNaN;   // by the chosen cost mode
  double delta = kNaN;  // top1 - this sweep's 1x 32/32 top1 of the same network
  std::string ref_network;  // "" = no paper comparison
  std::string paper_table;
  double paper_top1 = kNaN, paper_delta = kNaN, paper_cost = kNaN;
  int seeds_done = 0;
};

struct GridView {
  int64_t sweep_id = 0;
  std::string sweep_name;  // for titles; may be empty
  std::vector<CellView> cells;  // the coordinator's order
  bool with_paper = false;
  CostMode cost_mode = CostMode::kUniform;
};

struct GridOptions {
  std::string network;        // "" = all
  double width = 0;           // 0 = all
  const PaperIndex* paper = nullptr;  // null = no paper columns
  std::string paper_ref = "auto";
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
nlohmann::json GridJson(const GridView& v);

std::string TrialStateName(pb::TrialState s);
std::string SweepStateName(pb::SweepState s);
Color StateColor(const std::string& state);
std::string WidthLabel(double w);  // "1x", "1.5x"

}  // namespace wrpn::client
