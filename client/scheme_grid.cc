#include "client/scheme_grid.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wrpn::client {
namespace {

// Bits in the paper's order (32 first, then descending) as a sort key.
int BitsRank(int bits) { return bits == 32 ? -1 : -bits; }

double Metric(const CellView& c, GridMetric m) { return m == GridMetric::kTop5 ? c.top5 : c.top1; }

}  // namespace

std::vector<std::string> GridSchemes(const GridView& v) {
  std::vector<std::string> out;
  for (const CellView& c : v.cells) {
    if (std::find(out.begin(), out.end(), c.cell.scheme()) == out.end()) out.push_back(c.cell.scheme());
  }
  return out;
}

GridView SchemeView(const GridView& v, const std::string& scheme) {
  GridView out = v;
  out.cells.clear();
  for (const CellView& c : v.cells)
    if (c.cell.scheme() == scheme) out.cells.push_back(c);
  return out;
}

std::vector<Table> GridTablesPerScheme(const GridView& v, GridMetric metric) {
  const std::vector<std::string> schemes = GridSchemes(v);
  if (schemes.size() <= 1) return GridTables(v, metric);
  std::vector<Table> out;
  for (const std::string& s : schemes) {
    for (Table& t : GridTables(SchemeView(v, s), metric)) {
      t.title = absl::StrCat("scheme ", s, ": ", t.title);
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<Table> SchemeCompareTables(const GridView& v, GridMetric metric) {
  const std::vector<std::string> schemes = GridSchemes(v);
  // (network, width) blocks in first-seen order; in each, (wbits, abits) -> scheme -> cell.
  using Bits = std::pair<int, int>;
  std::vector<std::pair<std::string, double>> blocks;
  std::map<std::pair<std::string, double>, std::map<Bits, std::map<std::string, const CellView*>>> cells;
  for (const CellView& c : v.cells) {
    const auto key = std::make_pair(c.cell.network(), c.cell.width());
    if (!cells.count(key)) blocks.push_back(key);
    cells[key][{c.cell.wbits(), c.cell.abits()}][c.cell.scheme()] = &c;
  }
  const char* what = metric == GridMetric::kTop5 ? "top-5 %" : "top-1 %";
  std::vector<Table> out;
  for (const auto& key : blocks) {
    Table t;
    t.title = absl::StrFormat("%s %s  %s by scheme (same bits, same compute cost)", key.first,
                              WidthLabel(key.second), what);
    t.columns = {"w/a", "cost"};
    for (const auto& s : schemes) t.columns.push_back(s);
    t.columns.push_back("best");
    t.right.assign(t.columns.size(), true);
    t.right[0] = t.right.back() = false;
    std::vector<Bits> bits;
    for (const auto& [b, _] : cells[key]) bits.push_back(b);
    std::sort(bits.begin(), bits.end(), [](const Bits& a, const Bits& b) {
      return std::make_pair(BitsRank(a.first), BitsRank(a.second)) <
             std::make_pair(BitsRank(b.first), BitsRank(b.second));
    });
    for (const Bits& b : bits) {
      const auto& by_scheme = cells[key][b];
      std::vector<Cell> row{Cell(absl::StrFormat("w%d/a%d", b.first, b.second)),
                            Cell(Fixed(by_scheme.begin()->second->cost, 3))};
      std::string best;
      double best_value = -1;
      for (const auto& s : schemes) {
        auto it = by_scheme.find(s);
        if (it == by_scheme.end()) {
          row.push_back(Cell(""));
          continue;
        }
        const CellView& c = *it->second;
        const double value = Metric(c, metric);
        if (std::isnan(value)) {
          const std::string state = TrialStateName(c.cell.state());
          row.push_back(Cell(state, StateColor(state)));
          continue;
        }
        std::string text = Fixed(value, 2);
        if (metric == GridMetric::kTop1 && !std::isnan(c.top1_std)) text += absl::StrFormat("±%.2f", c.top1_std);
        row.push_back(Cell(text, c.cell.state() == pb::TRIAL_SUCCEEDED ? Color::kNone : Color::kYellow));
        if (value > best_value) best_value = value, best = s;
      }
      row.push_back(Cell(by_scheme.size() > 1 ? best : ""));
      t.rows.push_back(std::move(row));
    }
    t.notes.push_back("cost: our cost model relative to 1x w32/a32; it depends on the bits only, not the scheme");
    out.push_back(std::move(t));
  }
  return out;
}

std::string SchemeSeriesSuffix(const GridView& v, const pb::GridCell& c) {
  return GridSchemes(v).size() > 1 ? " " + c.scheme() : "";
}

}  // namespace wrpn::client
