#include "client/grid.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace wrpn::client {

PaperIndex::PaperIndex(const pb::GetPaperTablesResponse& tables) {
  for (const pb::PaperValue& v : tables.values()) {
    PaperEntry& e = cells_[{v.network(), v.width(), v.wbits(), v.abits()}];
    if (v.has_top1() && std::isnan(e.top1)) {
      e.top1 = v.top1();
      e.table = v.table();
    }
    if (v.has_cost() && std::isnan(e.cost)) e.cost = v.cost();
    if (e.table.empty()) e.table = v.table();
  }
}

const PaperEntry* PaperIndex::Find(const std::string& network, double width, int wbits,
                                   int abits) const {
  auto it = cells_.find({network, width, wbits, abits});
  return it == cells_.end() ? nullptr : &it->second;
}

const PaperEntry* PaperIndex::Baseline(const std::string& network) const {
  const PaperEntry* e = Find(network, 1.0, 32, 32);
  return e && !std::isnan(e->top1) ? e : nullptr;
}

std::vector<std::tuple<std::string, double, int, int, PaperEntry>> PaperIndex::All() const {
  std::vector<std::tuple<std::string, double, int, int, PaperEntry>> out;
  for (const auto& [k, e] : cells_)
    out.emplace_back(std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), e);
  return out;
}

absl::StatusOr<std::string> PaperReference(const std::string& network,
                                           const std::string& override_ref) {
  const std::string o = override_ref.empty() ? "auto" : override_ref;
  if (o == "none") return std::string();
  if (o == "alexnet" || o == "table1" || o == "table2" || o == "table3") return std::string("alexnet");
  if (o == "resnet34" || o == "resnet" || o == "table4") return std::string("resnet34");
  if (o == "inception_bn" || o == "inception" || o == "table5") return std::string("inception_bn");
  if (o != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--paper-ref: unknown reference '", o,
        "' (expected auto, none, alexnet, resnet34, inception_bn or table1..table5)"));
  }
  if (network == "lenet5" || network == "alexnet") return std::string("alexnet");
  if (absl::StartsWith(network, "resnet")) return std::string("resnet34");
  if (absl::StartsWith(network, "inception")) return std::string("inception_bn");
  return std::string();
}

std::string PaperReferenceLabel(const std::string& ref) {
  if (ref == "alexnet") return "AlexNet, Tables 1-3";
  if (ref == "resnet34") return "ResNet-34, Table 4";
  if (ref == "inception_bn") return "Inception-BN, Table 5";
  return ref;
}

std::string TrialStateName(pb::TrialState s) {
  switch (s) {
    case pb::TRIAL_QUEUED: return "queued";
    case pb::TRIAL_RUNNING: return "running";
    case pb::TRIAL_SUCCEEDED: return "succeeded";
    case pb::TRIAL_FAILED: return "failed";
    case pb::TRIAL_CANCELLED: return "cancelled";
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
  if (s == "queued" || s == "cancelled") return Color::kDim;
  return Color::kNone;
}

std::string WidthLabel(double w) { return absl::StrFormat("%gx", w); }

absl::StatusOr<GridView> BuildGridView(const pb::GetGridResponse& grid, const GridOptions& opt) {
  GridView v;
  v.sweep_id = grid.sweep_id();
  v.with_paper = opt.paper != nullptr;
  v.cost_mode = opt.cost_mode;
  std::map<std::string, double> own_baseline;
  for (const pb::GridCell& c : grid.cells()) {
    if (c.width() == 1.0 && c.wbits() == 32 && c.abits() == 32 && c.has_final_top1())
      own_baseline[c.network()] = c.final_top1();
  }
  for (const pb::GridCell& c : grid.cells()) {
    if (!opt.network.empty() && c.network() != opt.network) continue;
    if (opt.width > 0 && c.width() != opt.width) continue;
    CellView cv;
    cv.cell = c;
    if (c.has_final_top1()) cv.top1 = c.final_top1();
    if (c.has_final_top1_std() && c.seeds_size() > 1) cv.top1_std = c.final_top1_std();
    if (c.has_final_top5()) cv.top5 = c.final_top5();
    if (c.has_best_top1()) cv.best_top1 = c.best_top1();
    cv.cost = opt.cost_mode == CostMode::kUniform ? c.cost_uniform() : c.cost_first_last_fp32();
    for (const auto& s : c.seeds()) cv.seeds_done += s.has_final_top1();
    if (auto it = own_baseline.find(c.network()); it != own_baseline.end() && c.has_final_top1())
      cv.delta = c.final_top1() - it->second;
    if (opt.paper) {
      auto ref = PaperReference(c.network(), opt.paper_ref);
      if (!ref.ok()) return ref.status();
      cv.ref_network = *ref;
      if (!cv.ref_network.empty()) {
        const PaperEntry* base = opt.paper->Baseline(cv.ref_network);
        if (const PaperEntry* e = opt.paper->Find(cv.ref_network, c.width(), c.wbits(), c.abits())) {
          cv.paper_table = e->table;
          cv.paper_top1 = e->top1;
          cv.paper_cost = e->cost;
          if (base && !std::isnan(e->top1)) cv.paper_delta = e->top1 - base->top1;
        }
      }
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

nlohmann::json GridJson(const GridView& v) {
  auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
  nlohmann::json cells = nlohmann::json::array();
  for (const CellView& c : v.cells) {
    nlohmann::json seeds = nlohmann::json::array();
    for (const auto& s : c.cell.seeds()) {
      seeds.push_back({{"seed", s.seed()},
                       {"trial_id", s.trial_id()},
                       {"state", TrialStateName(s.state())},
                       {"final_top1", s.has_final_top1() ? nlohmann::json(s.final_top1()) : nlohmann::json()}});
    }
    nlohmann::json j = {{"network", c.cell.network()},
                        {"width", c.cell.width()},
                        {"wbits", c.cell.wbits()},
                        {"abits", c.cell.abits()},
                        {"state", TrialStateName(c.cell.state())},
                        {"top1", num(c.top1)},
                        {"top1_std", num(c.top1_std)},
                        {"best_top1", num(c.best_top1)},
                        {"top5", num(c.top5)},
                        {"delta_top1", num(c.delta)},
                        {"fma_ratio", c.cell.fma_ratio()},
                        {"cost_uniform", c.cell.cost_uniform()},
                        {"cost_first_last_fp32", c.cell.cost_first_last_fp32()},
                        {"seeds", seeds},
                        {"scheme", c.cell.scheme()}};
    if (v.with_paper) {
      j["paper"] = {{"network", c.ref_network.empty() ? nlohmann::json() : nlohmann::json(c.ref_network)},
                    {"table", c.paper_table.empty() ? nlohmann::json() : nlohmann::json(c.paper_table)},
                    {"top1", num(c.paper_top1)},
                    {"delta_top1", num(c.paper_delta)},
                    {"cost", num(c.paper_cost)}};
    }
    cells.push_back(std::move(j));
  }
  return {{"sweep_id", v.sweep_id},
          {"cost_mode", v.cost_mode == CostMode::kUniform ? "uniform" : "first_last_fp32"},
          {"cells", cells}};
}

}  // namespace wrpn::client
