#include "client/plot.h"
#include "client/scheme_grid.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wrpn::client {

absl::StatusOr<std::string> TerminalFor(const std::string& out, bool have_pngcairo) {
  if (absl::EndsWith(out, ".png")) {
    return std::string(have_pngcairo ? "pngcairo size 1100,760 enhanced font 'Sans,11'"
                                     : "png size 1100,760");
  }
  if (absl::EndsWith(out, ".svg")) return std::string("svg size 1100,760 enhanced font 'Sans,11'");
  return absl::InvalidArgumentError(
      absl::StrCat("--out: '", out, "' must end in .png or .svg (that picks the format)"));
}

namespace {

std::string Quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

std::string SweepName(const GridView& v) {
  return v.sweep_name.empty() ? std::string() : " (" + v.sweep_name + ")";
}

// Greedy label placement: each label takes the first of a few offsets (in character cells of a
// ~100 x 46 cell plot area) that overlaps neither a point nor an earlier label.
struct PlacedLabel {
  const ParetoPoint* point;
  double dx, dy;
};
std::vector<PlacedLabel> PlaceLabels(const std::vector<ParetoPoint>& pts) {
  std::vector<PlacedLabel> out;
  if (pts.empty()) return out;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& p : pts) {
    const double lx = std::log2(std::max(p.cost, 1e-9));
    x0 = std::min(x0, lx), x1 = std::max(x1, lx), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  const double xr = std::max(x1 - x0, 1e-9) * 1.13, yr = std::max(y1 - y0, 1e-9) * 1.13;
  const double kW = 100, kH = 46;
  auto cx = [&](const ParetoPoint& p) { return (std::log2(std::max(p.cost, 1e-9)) - x0) / xr * kW + 0.05 * kW; };
  auto cy = [&](const ParetoPoint& p) { return (p.y - y0) / yr * kH + 0.05 * kH; };
  struct Box { double l, r, b, t; };
  std::vector<Box> taken;
  for (const auto& p : pts) taken.push_back({cx(p) - 0.7, cx(p) + 0.7, cy(p) - 0.4, cy(p) + 0.4});
  auto overlap = [](const Box& a, const Box& b) {
    const double w = std::min(a.r, b.r) - std::max(a.l, b.l), h = std::min(a.t, b.t) - std::max(a.b, b.b);
    return w > 0 && h > 0 ? w * h : 0.0;
  };
  // Ours first: they get the best spots.
  std::vector<const ParetoPoint*> order;
  for (const auto& p : pts) if (absl::StartsWith(p.series, "ours")) order.push_back(&p);
  for (const auto& p : pts) if (!absl::StartsWith(p.series, "ours")) order.push_back(&p);
  for (const ParetoPoint* p : order) {
    const double len = 0.8 * static_cast<double>(p->label.size());
    const bool ours = absl::StartsWith(p->series, "ours");
    std::vector<std::pair<double, double>> cand = {{1, 0.8}, {1, -0.9}, {-1 - len, 0.8}, {-1 - len, -0.9},
                                                   {1, 1.8}, {1, -1.9}, {-1 - len, 1.8}, {-1 - len, -1.9}};
    if (!ours) std::swap(cand[0], cand[1]), std::swap(cand[2], cand[3]);
    double best = 1e300;
    std::pair<double, double> pick = cand[0];
    Box pick_box{};
    for (const auto& [dx, dy] : cand) {
      const Box b{cx(*p) + dx, cx(*p) + dx + len, cy(*p) + dy - 0.5, cy(*p) + dy + 0.5};
      double cost = 0;
      for (const Box& t : taken) cost += overlap(b, t);
      if (b.l < 0 || b.r > kW * 1.1 || b.b < 0 || b.t > kH * 1.1) cost += 100;
      if (cost < best - 1e-9) best = cost, pick = {dx, dy}, pick_box = b;
      if (cost == 0) break;
    }
    taken.push_back(pick_box);
    out.push_back({p, pick.first, pick.second});
  }
  return out;
}

std::string BitsLabel(double width, int wbits, int abits) {
  return absl::StrFormat("%gx %d/%d", width, wbits, abits);
}

void MarkFront(std::vector<ParetoPoint>& pts) {
  std::map<std::string, std::vector<ParetoPoint*>> by;
  for (auto& p : pts)
    if (!p.pruned) by[p.series].push_back(&p);
  for (auto& [s, v] : by) {
    std::sort(v.begin(), v.end(), [](const ParetoPoint* a, const ParetoPoint* b) {
      return a->cost != b->cost ? a->cost < b->cost : a->y > b->y;
    });
    double best = -1e300;
    for (ParetoPoint* p : v) {
      if (p->y > best) {
        p->front = true;
        best = p->y;
      }
    }
  }
}

// A pruned cell's point: its top-1 at the rung (as a change from the baseline in delta plots,
// the baseline being the final top-1 of its network and scheme's 1x 32/32 cell).
std::optional<ParetoPoint> PrunedPoint(const GridView& v, const CellView& c, ParetoY y) {
  if (c.cell.state() != pb::TRIAL_PRUNED || !c.cell.has_pruned_top1()) return std::nullopt;
  double value = c.cell.pruned_top1();
  if (y == ParetoY::kDelta) {
    const CellView* base = nullptr;
    for (const CellView& o : v.cells) {
      if (o.cell.network() == c.cell.network() && o.cell.scheme() == c.cell.scheme() &&
          !std::isnan(o.delta) && !std::isnan(o.top1))
        base = &o;
    }
    if (base == nullptr) return std::nullopt;
    value -= base->top1 - base->delta;
  }
  return ParetoPoint{"ours: " + c.cell.network() + SchemeSeriesSuffix(v, c.cell) + " pruned at a rung",
                     absl::StrFormat("%s (epoch %d)", BitsLabel(c.cell.width(), c.cell.wbits(), c.cell.abits()),
                                     c.cell.pruned_epoch()),
                     c.cost, value, false, true};
}

}  // namespace

std::vector<ParetoPoint> ParetoPoints(const GridView& v, ParetoY y) {
  std::vector<ParetoPoint> pts;
  std::set<std::tuple<std::string, double, int, int>> paper_done;
  for (const CellView& c : v.cells) {
    const double val = y == ParetoY::kDelta ? c.delta : c.top1;
    if (std::isnan(val)) {
      if (auto p = PrunedPoint(v, c, y)) pts.push_back(*std::move(p));
      continue;
    }
    pts.push_back({"ours: " + c.cell.network() + SchemeSeriesSuffix(v, c.cell), BitsLabel(c.cell.width(), c.cell.wbits(), c.cell.abits()),
                   c.cost, val, false});
    if (!v.with_paper || y != ParetoY::kDelta || c.ref_network.empty() || std::isnan(c.paper_delta))
      continue;
    if (!paper_done.insert({c.ref_network, c.cell.width(), c.cell.wbits(), c.cell.abits()}).second)
      continue;
    double cost = c.paper_cost;
    if (std::isnan(cost) || v.cost_mode != CostMode::kUniform) {
      auto model = ComputeCost(c.ref_network, c.cell.width(), c.cell.wbits(), c.cell.abits(),
                               DefaultInput(c.ref_network));
      if (!model.ok()) continue;
      cost = v.cost_mode == CostMode::kUniform ? model->cost_uniform : model->cost_first_last_fp32;
    }
    pts.push_back({"paper: " + c.ref_network + " (ImageNet)",
                   BitsLabel(c.cell.width(), c.cell.wbits(), c.cell.abits()), cost, c.paper_delta,
                   false});
  }
  MarkFront(pts);
  return pts;
}

std::string ParetoScript(const GridView& v, const std::vector<ParetoPoint>& pts, ParetoY y,
                         const std::string& terminal, const std::string& out) {
  std::ostringstream s;
  s << "set terminal " << terminal << "\n";
  s << "set output " << Quote(out) << "\n";
  s << "set encoding utf8\n";
  s << "set title " << Quote(absl::StrFormat("Sweep %d%s: top-1 vs compute cost (labels: width w/a bits)", v.sweep_id, SweepName(v))) << "\n";
  s << "set xlabel "
    << Quote(v.cost_mode == CostMode::kUniform
                 ? "compute cost relative to 1x 32/32 (FMAs x (w+a bits), log scale)"
                 : "compute cost relative to 1x 32/32, first/last layer FP32 (log scale)")
    << "\n";
  s << "set ylabel "
    << Quote(y == ParetoY::kDelta ? "top-1 change from own 1x 32/32 baseline (points)" : "top-1 (%)")
    << "\n";
  s << "set logscale x 2\nset grid xtics ytics lc rgb '#dddddd'\nset key outside right top box\n";
  s << "set offsets graph 0.05, graph 0.08, graph 0.08, graph 0.05\n";
  std::vector<std::string> series;
  for (const auto& p : pts)
    if (std::find(series.begin(), series.end(), p.series) == series.end()) series.push_back(p.series);
  // Ours first (filled circles, solid front), the paper second (open triangles, dashed front).
  std::stable_sort(series.begin(), series.end(), [](const std::string& a, const std::string& b) {
    return absl::StartsWith(a, "ours") && !absl::StartsWith(b, "ours");
  });
  for (size_t i = 0; i < series.size(); ++i) {
    s << "$s" << i << " << EOD\n";
    for (const auto& p : pts)
      if (p.series == series[i]) s << absl::StrFormat("%.6g %.6g %s %d\n", p.cost, p.y, Quote(p.label), p.front ? 1 : 0);
    s << "EOD\n";
    s << "$f" << i << " << EOD\n";
    std::vector<const ParetoPoint*> front;
    for (const auto& p : pts)
      if (p.series == series[i] && p.front) front.push_back(&p);
    std::sort(front.begin(), front.end(), [](auto* a, auto* b) { return a->cost < b->cost; });
    for (auto* p : front) s << absl::StrFormat("%.6g %.6g\n", p->cost, p->y);
    s << "EOD\n";
  }
  if (y == ParetoY::kDelta) s << "set arrow from graph 0, first 0 to graph 1, first 0 nohead lc rgb '#888888' dt 3\n";
  const char* ours_colors[] = {"#1f77b4", "#2ca02c", "#9467bd", "#8c564b"};
  const char* paper_colors[] = {"#d62728", "#ff7f0e", "#e377c2", "#7f7f7f"};
  std::map<std::string, std::string> colors;
  {
    int oi = 0, pi = 0;
    const std::string kPruned = " pruned at a rung";
    for (const auto& name : series) {
      if (absl::EndsWith(name, kPruned)) continue;
      colors[name] = absl::StartsWith(name, "ours") ? ours_colors[oi++ % 4] : paper_colors[pi++ % 4];
    }
    for (const auto& name : series) {  // a pruned series takes its cells' series' colour
      if (!absl::EndsWith(name, kPruned)) continue;
      auto parent = colors.find(name.substr(0, name.size() - kPruned.size()));
      colors[name] = parent != colors.end() ? parent->second : ours_colors[oi++ % 4];
    }
  }
  for (const auto& l : PlaceLabels(pts)) {
    const ParetoPoint& p = *l.point;
    const bool ours = absl::StartsWith(p.series, "ours");
    s << absl::StrFormat("set label %s at %.6g, %.6g left offset char %.1f, %.1f font '%s' tc rgb '%s' front\n",
                         Quote(p.label), p.cost, p.y, l.dx, l.dy, ours ? "Sans,9" : "Sans,8", colors[p.series]);
  }
  s << "plot \\\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const bool ours = absl::StartsWith(series[i], "ours");
    const std::string color = colors[series[i]];
    const std::string name = series[i];
    const bool pruned = absl::EndsWith(name, " pruned at a rung");
    // Ours filled circles, pruned cells hollow circles, the paper's open triangles.
    s << "  $s" << i << " using 1:2 with points pt " << (pruned ? 6 : ours ? 7 : 8) << " ps "
      << (ours ? 1.6 : 1.8) << " lc rgb '" << color << "' title " << Quote(name);
    if (!pruned) {
      s << ", \\\n  $f" << i << " using 1:2 with steps lw 2 dt " << (ours ? 1 : 2) << " lc rgb '" << color
        << "' title " << Quote(name.substr(0, name.find(" (")) + ", Pareto front");
    }
    s << (i + 1 < series.size() ? ", \\\n" : "\n");
  }
  if (series.empty()) s << "  NaN notitle\n";
  return s.str();
}

std::string GridHeatmapScript(const GridView& v, bool delta, const std::string& terminal,
                              const std::string& out) {
  // Blocks: (network, width) in the view's order.
  std::vector<std::pair<std::string, double>> blocks;
  for (const CellView& c : v.cells) {
    auto key = std::make_pair(c.cell.network(), c.cell.width());
    if (std::find(blocks.begin(), blocks.end(), key) == blocks.end()) blocks.push_back(key);
  }
  std::ostringstream s;
  s << "set terminal " << terminal << "\nset output " << Quote(out) << "\nset encoding utf8\n";
  const int n = std::max<int>(1, static_cast<int>(blocks.size()));
  const int cols = std::min(n, 3);
  const int rows = (n + cols - 1) / cols;
  s << "set multiplot layout " << rows << "," << cols << " title "
    << Quote(absl::StrFormat("Sweep %d%s: %s (rows: weight bits, columns: activation bits)", v.sweep_id, SweepName(v),
                             delta ? "top-1 change from 1x 32/32 (points)" : "top-1 (%)"))
    << "\n";
  s << "set palette defined (0 '#b2182b', 0.5 '#fddbc7', 1 '#2166ac')\nunset key\n";
  s << "set xlabel 'activation bits'\nset ylabel 'weight bits'\nset cblabel "
    << Quote(delta ? "change (points)" : "top-1 (%)") << "\n";
  double lo = 1e300, hi = -1e300;
  for (const CellView& c : v.cells) {
    const double x = delta ? c.delta : c.top1;
    if (!std::isnan(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  }
  if (lo <= hi) {
    if (delta) hi = std::max(std::abs(lo), std::abs(hi)), lo = -hi;  // white at zero
    if (lo == hi) lo -= 1, hi += 1;
    s << absl::StrFormat("set cbrange [%.6g:%.6g]\n", lo, hi);
  }
  for (const auto& [net, width] : blocks) {
    std::set<int> ws, as;
    for (const CellView& c : v.cells)
      if (c.cell.network() == net) ws.insert(c.cell.wbits()), as.insert(c.cell.abits());
    auto order = [](const std::set<int>& b) {
      std::vector<int> o(b.begin(), b.end());
      std::sort(o.begin(), o.end(), [](int x, int y) { return x == 32 ? y != 32 : (y != 32 && x > y); });
      return o;
    };
    const auto wv = order(ws), av = order(as);
    s << "set title " << Quote(absl::StrFormat("%s %gx", net, width)) << "\n";
    s << "set xrange [-0.5:" << av.size() - 0.5 << "]\nset yrange [" << wv.size() - 0.5 << ":-0.5]\n";
    s << "set xtics (";
    for (size_t i = 0; i < av.size(); ++i) s << (i ? ", " : "") << Quote(absl::StrCat(av[i])) << " " << i;
    s << ")\nset ytics (";
    for (size_t i = 0; i < wv.size(); ++i) s << (i ? ", " : "") << Quote(absl::StrCat(wv[i])) << " " << i;
    s << ")\n$d << EOD\n";
    for (size_t j = 0; j < wv.size(); ++j) {
      for (size_t i = 0; i < av.size(); ++i) {
        double x = kNaN;
        std::string label = "";
        for (const CellView& c : v.cells) {
          if (c.cell.network() == net && c.cell.width() == width && c.cell.wbits() == wv[j] &&
              c.cell.abits() == av[i]) {
            x = delta ? c.delta : c.top1;
            label = std::isnan(x) ? TrialStateName(c.cell.state())
                                  : (delta ? Signed(x, 2) : Fixed(x, 2));
          }
        }
        s << i << " " << j << " " << (std::isnan(x) ? std::string("NaN") : absl::StrFormat("%.6g", x))
          << " " << Quote(label) << "\n";
      }
    }
    s << "EOD\n";
    s << "plot $d using 1:2:3 with image, $d using 1:2:4 with labels font 'Sans,10'\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

std::string FootprintScript(const std::string& title, const std::vector<FootprintBar>& rows,
                            const std::string& terminal, const std::string& out) {
  auto mib = [](double b) { return absl::StrFormat("%.6g", b / (1 << 20)); };
  std::ostringstream s;
  s << "set terminal " << terminal << "\nset output " << Quote(out) << "\nset encoding utf8\n";
  s << "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n";
  s << "set boxwidth 0.6\nset key left top box\nset grid ytics lc rgb '#dddddd'\n";
  s << "set xlabel 'batch size'\nset ylabel 'training memory (MiB)'\nset yrange [0:*]\n";
  s << "$d << EOD\n";
  for (const auto& r : rows) {
    const bool measured = r.measured_bytes > 0;
    s << r.batch << " " << mib(r.paper.activation_bytes) << " " << mib(r.paper.weight_bytes) << " "
      << mib(r.paper.gradient_bytes) << " " << mib(r.autograd.activation_bytes) << " "
      << mib(r.autograd.weight_bytes) << " " << mib(r.autograd.gradient_bytes) << " "
      << (measured ? mib(r.measured_bytes) : std::string("NaN")) << "\n";
  }
  s << "EOD\n";
  s << "set multiplot layout 1,2 title " << Quote(title) << "\n";
  s << "set title \"the paper's accounting (section 2)\"\n";
  s << "plot $d using 2:xtic(1) title 'activation maps' lc rgb '#d62728', "
       "'' using 3 title 'weights' lc rgb '#1f77b4', '' using 4 title 'gradient maps' lc rgb '#bbbbbb'\n";
  s << "set title 'what autograd keeps (measured peaks marked)'\n";
  s << "plot $d using 5:xtic(1) title 'saved activations' lc rgb '#d62728', "
       "'' using 6 title 'weights, gradients, momentum' lc rgb '#1f77b4', "
       "'' using 7 title 'gradient maps' lc rgb '#bbbbbb', "
       "'' using ($0):8 with points pt 7 ps 1.6 lc rgb 'black' title 'measured peak'\n";
  s << "unset multiplot\n";
  return s.str();
}

absl::Status RunGnuplot(const std::string& gnuplot, const std::string& script) {
  char tmpl[] = "/tmp/wrpn-plot-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return absl::InternalError("cannot create a temporary file for the gnuplot script");
  {
    std::ofstream f(tmpl);
    f << script;
  }
  close(fd);
  const std::string errfile = std::string(tmpl) + ".err";
  const std::string cmd = absl::StrCat("'", gnuplot, "' '", tmpl, "' 2>'", errfile, "' >/dev/null");
  const int rc = std::system(cmd.c_str());
  std::ifstream ef(errfile);
  std::stringstream err;
  err << ef.rdbuf();
  std::remove(tmpl);
  std::remove(errfile.c_str());
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127) {
      return absl::FailedPreconditionError(absl::StrCat(
          "gnuplot not found ('", gnuplot, "'): install it (apt-get install gnuplot-nox) or set "
          "WRPN_GNUPLOT"));
    }
    return absl::InternalError(absl::StrCat("gnuplot failed: ", err.str()));
  }
  return absl::OkStatus();
}

bool GnuplotHasPngcairo(const std::string& gnuplot) {
  const std::string cmd = absl::StrCat("'", gnuplot, "' -e 'set terminal' 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  pclose(p);
  return out.find("pngcairo") != std::string::npos;
}

}  // namespace wrpn::client
