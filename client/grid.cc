#include "client/grid.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace wrpn::client {

std::string TrialStateName(pb::TrialState s) {
  switch (s) {
    case pb::TRIAL_QUEUED: return "queued";
    case pb::TRIAL_RUNNING: return "running";
    case pb::TRIAL_SUCCEEDED: return "succeeded";
    case pb::TRIAL_FAILED: return "failed";
    case pb::TRIAL_CANCELLED: return "cancelled";
    case pb::TRIAL_PRUNED: return "pruned";
    default: return "unknown";
  }
}

std::string SweepStateName(pb::SweepState s) {
  switch (s) {
    case pb::SWEEP_QUEUED: return "queued";
    case pb::SWEEP_RUNNING: return "running";
    case pb::SWEEP_SUCCEEDED: return "succeeded";
    case pb::SWEEP_FAILED: return "failed";
    case pb::SWEEP_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

Color StateColor(const std::string& s) {
  if (s == "succeeded" || s == "alive") return Color::kGreen;
  if (s == "failed" || s == "lost") return Color::kRed;
  if (s == "running" || s == "draining") return Color::kYellow;
  if (s == "queued" || s == "cancelled" || s == "pruned") return Color::kDim;
  return Color::kNone;
}

std::string WidthLabel(double w) { return absl::StrFormat("%gx", w); }

std::string PrunedText(int64_t epoch, double top1) {
  return absl::StrFormat("pruned at epoch %d: %.2f", epoch, top1);
}

absl::StatusOr<GridView> BuildGridView(const pb::GetGridResponse& grid, const GridOptions& opt) {
  GridView v;
  v.sweep_id = grid.sweep_id();
  v.with_paper = opt.paper && !grid.paper_version().empty();
  v.cost_mode = opt.cost_mode;
  v.response = grid;
  v.response.clear_cells();
  auto num = [](bool has, double x) { return has ? x : kNaN; };
  for (const pb::GridCell& c : grid.cells()) {
    if (!opt.network.empty() && c.network() != opt.network) continue;
    if (opt.width > 0 && c.width() != opt.width) continue;
    *v.response.add_cells() = c;
    CellView cv;
    cv.cell = c;
    cv.top1 = num(c.has_final_top1(), c.final_top1());
    cv.top1_std = num(c.has_final_top1_std() && c.seeds_size() > 1, c.final_top1_std());
    cv.top5 = num(c.has_final_top5(), c.final_top5());
    cv.best_top1 = num(c.has_best_top1(), c.best_top1());
    cv.cost = opt.cost_mode == CostMode::kUniform ? c.cost_uniform() : c.cost_first_last_fp32();
    for (const auto& s : c.seeds()) cv.seeds_done += s.has_final_top1();
    cv.delta = num(c.has_our_delta(), c.our_delta());
    if (v.with_paper) {
      cv.ref_network = c.paper_network();
      cv.paper_table = c.paper_table();
      cv.paper_top1 = num(c.has_paper_top1(), c.paper_top1());
      cv.paper_delta = num(c.has_paper_delta(), c.paper_delta());
      cv.paper_cost = num(c.has_paper_cost(), c.paper_cost());
    }
    v.cells.push_back(std::move(cv));
  }
  if (v.cells.empty() && (!opt.network.empty() || opt.width > 0)) {
    return absl::NotFoundError(absl::StrCat(
        "sweep ", grid.sweep_id(), " has no cells",
        opt.network.empty() ? "" : absl::StrCat(" for network ", opt.network),
        opt.width > 0 ? absl::StrCat(" at width ", WidthLabel(opt.width)) : ""));
  }
  return v;
}

namespace {

// Bits in the paper's order: 32 first, then descending.
std::vector<int> SortedBits(const std::set<int>& bits) {
  std::vector<int> out(bits.begin(), bits.end());
  std::sort(out.begin(), out.end(), [](int a, int b) {
    if (a == 32 || b == 32) return a == 32 && b != 32;
    return a > b;
  });
  return out;
}

// (network, width) blocks in first-seen order with their cells, and the network's bit axes.
struct Block {
  std::string network;
  double width;
  std::vector<const CellView*> cells;
};
std::vector<Block> Blocks(const GridView& v) {
  std::vector<Block> out;
  for (const CellView& c : v.cells) {
    auto it = std::find_if(out.begin(), out.end(), [&](const Block& b) {
      return b.network == c.cell.network() && b.width == c.cell.width();
    });
    if (it == out.end()) it = out.insert(out.end(), Block{c.cell.network(), c.cell.width(), {}});
    it->cells.push_back(&c);
  }
  // Group by network, widths ascending, keeping the networks' first-seen order.
  std::vector<std::string> nets;
  for (const auto& b : out)
    if (std::find(nets.begin(), nets.end(), b.network) == nets.end()) nets.push_back(b.network);
  std::stable_sort(out.begin(), out.end(), [&](const Block& a, const Block& b) {
    auto ia = std::find(nets.begin(), nets.end(), a.network) - nets.begin();
    auto ib = std::find(nets.begin(), nets.end(), b.network) - nets.begin();
    return ia != ib ? ia < ib : a.width < b.width;
  });
  return out;
}

void Axes(const GridView& v, const std::string& network, std::vector<int>* wbits,
          std::vector<int>* abits) {
  std::set<int> w, a;
  for (const CellView& c : v.cells) {
    if (c.cell.network() != network) continue;
    w.insert(c.cell.wbits());
    a.insert(c.cell.abits());
  }
  *wbits = SortedBits(w);
  *abits = SortedBits(a);
}

Cell StateCell(const CellView& c) {
  const std::string s = TrialStateName(c.cell.state());
  return Cell(s, StateColor(s));
}

Cell MetricCell(const CellView& c, GridMetric m, bool paper) {
  if (m == GridMetric::kCost) {
    std::string t = Fixed(c.cost, 3);
    if (paper) t += "  [" + (std::isnan(c.paper_cost) ? std::string("  n/a") : Fixed(c.paper_cost, 2)) + "]";
    return Cell(t);
  }
  const double value = m == GridMetric::kTop1 ? c.top1 : c.top5;
  if (std::isnan(value) && c.cell.state() == pb::TRIAL_PRUNED && c.cell.has_pruned_top1())
    return Cell(PrunedText(c.cell.pruned_epoch(), c.cell.pruned_top1()), Color::kDim);
  if (std::isnan(value)) return StateCell(c);
  std::string t = Fixed(value, 2);
  if (m == GridMetric::kTop1 && !std::isnan(c.top1_std)) t += absl::StrFormat("±%.2f", c.top1_std);
  if (m == GridMetric::kTop1 && paper) {
    t += "  " + (std::isnan(c.delta) ? std::string("  n/a") : Signed(c.delta, 2));
    t += "  [" + (std::isnan(c.paper_delta) ? std::string("  n/a") : Signed(c.paper_delta, 2)) + "]";
  }
  Color color = Color::kNone;
  if (c.cell.state() != pb::TRIAL_SUCCEEDED) color = Color::kYellow;  // partial seeds
  return Cell(t, color);
}

std::string PaperTableName(const std::string& id) {
  if (id.size() == 6 && absl::StartsWith(id, "table")) return std::string("Table ") + id.back();
  return id;
}

}  // namespace

std::vector<Table> GridTables(const GridView& v, GridMetric metric) {
  std::vector<Table> out;
  for (const Block& b : Blocks(v)) {
    std::vector<int> wbits, abits;
    Axes(v, b.network, &wbits, &abits);
    Table t;
    const char* what = metric == GridMetric::kTop1 ? "top-1 %" : metric == GridMetric::kTop5 ? "top-5 %" : "compute cost";
    t.title = absl::StrFormat("%s %s  %s  (rows: weight bits, columns: activation bits)", b.network,
                              WidthLabel(b.width), what);
    t.columns.push_back("w \\ a");
    t.right.push_back(false);
    for (int a : abits) {
      t.columns.push_back(absl::StrCat("a", a));
      t.right.push_back(true);
    }
    std::string paper_table;
    for (int w : wbits) {
      std::vector<Cell> row{Cell(absl::StrCat("w", w))};
      for (int a : abits) {
        auto it = std::find_if(b.cells.begin(), b.cells.end(), [&](const CellView* c) {
          return c->cell.wbits() == w && c->cell.abits() == a;
        });
        if (it == b.cells.end()) {
          row.push_back(Cell(""));
          continue;
        }
        if (!(*it)->paper_table.empty() && paper_table.empty()) paper_table = (*it)->paper_table;
        row.push_back(MetricCell(**it, metric, v.with_paper));
      }
      t.rows.push_back(std::move(row));
    }
    if (v.with_paper && metric == GridMetric::kTop1) {
      const std::string ref = b.cells.front()->ref_network;
      t.notes.push_back(absl::StrFormat(
          "cell: our top-1, our change from our %s 1x w32/a32, [the paper's change from its 1x "
          "w32/a32: %s]",
          b.network,
          ref.empty() ? std::string("no reference table")
                      : absl::StrCat(ref, " ", WidthLabel(b.width), ", ",
                                     paper_table.empty() ? std::string("not in the paper at this width")
                                                         : PaperTableName(paper_table))));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Table> CostTables(const GridView& v) {
  std::vector<Table> out = GridTables(v, GridMetric::kCost);
  for (Table& t : out) {
    absl::StrReplaceAll({{"compute cost", v.cost_mode == CostMode::kUniform
                                              ? "compute cost vs 1x w32/a32, every layer at the "
                                                "cell's bits (Table 3 rule)"
                                              : "compute cost vs 1x w32/a32, first and last "
                                                "layer FP32"}},
                        &t.title);
    if (v.with_paper)
      t.notes.push_back("cell: our cost model, [the paper's cost for its reference network]");
  }
  return out;
}

Table GridLongTable(const GridView& v) {
  Table t;
  t.columns = {"network", "width", "wbits", "abits", "state", "seeds", "seeds_done", "top1",
               "top1_std", "best_top1", "top5", "delta_top1", "fma_ratio", "cost_uniform",
               "cost_first_last_fp32", "trial_id", "scheme"};
  if (v.with_paper) {
    for (const char* c : {"paper_network", "paper_table", "paper_top1", "paper_delta_top1", "paper_cost"})
      t.columns.push_back(c);
  }
  t.right.assign(t.columns.size(), true);
  t.right[0] = t.right[4] = false;
  for (const CellView& c : v.cells) {
    std::vector<Cell> row = {c.cell.network(),
                             absl::StrFormat("%g", c.cell.width()),
                             absl::StrCat(c.cell.wbits()),
                             absl::StrCat(c.cell.abits()),
                             TrialStateName(c.cell.state()),
                             absl::StrCat(c.cell.seeds_size()),
                             absl::StrCat(c.seeds_done),
                             Fixed(c.top1, 4),
                             Fixed(c.top1_std, 4),
                             Fixed(c.best_top1, 4),
                             Fixed(c.top5, 4),
                             Fixed(c.delta, 4),
                             Fixed(c.cell.fma_ratio(), 4),
                             Fixed(c.cell.cost_uniform(), 4),
                             Fixed(c.cell.cost_first_last_fp32(), 4),
                             absl::StrCat(c.cell.trial_id()),
                             c.cell.scheme()};
    if (v.with_paper) {
      row.push_back(c.ref_network);
      row.push_back(c.paper_table);
      row.push_back(Fixed(c.paper_top1, 2));
      row.push_back(Fixed(c.paper_delta, 2));
      row.push_back(Fixed(c.paper_cost, 2));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace wrpn::client
