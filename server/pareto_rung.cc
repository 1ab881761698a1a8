#include "server/pareto_rung.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"

namespace wrpn::server {
namespace {

using nlohmann::json;

bool Live(const RungTrial& t) {
  return t.state == RungTrialState::kPending || t.state == RungTrialState::kReported;
}

int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

// The cells of `trials` with reported seeds, in the order of each cell's first trial.
std::vector<CellVerdict> ScoreCells(const std::vector<RungTrial>& trials) {
  std::vector<CellVerdict> cells;
  std::map<std::string, size_t> index;
  std::map<std::string, std::pair<double, double>> range;  // min, max
  for (const RungTrial& t : trials) {
    if (t.state != RungTrialState::kReported) continue;
    auto [it, fresh] = index.emplace(t.cell, cells.size());
    if (fresh) {
      CellVerdict c;
      c.cell = t.cell;
      c.cost_uniform = t.cost_uniform;
      cells.push_back(std::move(c));
      range[t.cell] = {t.top1, t.top1};
    }
    CellVerdict& c = cells[it->second];
    c.top1 += t.top1;
    ++c.seeds;
    auto& [lo, hi] = range[t.cell];
    lo = std::min(lo, t.top1);
    hi = std::max(hi, t.top1);
  }
  for (CellVerdict& c : cells) {
    c.top1 /= c.seeds;
    c.spread = range[c.cell].second - range[c.cell].first;
  }
  return cells;
}

// The best score among `front` cells that cost at most `cost`; nullopt when none does.
std::optional<double> BestAtOrBelow(const std::vector<CellVerdict>& front, double cost) {
  std::optional<double> best;
  for (const CellVerdict& c : front) {
    if (c.late || c.cost_uniform > cost) continue;
    if (!best || c.top1 > *best) best = c.top1;
  }
  return best;
}

void Judge(CellVerdict& c, const std::vector<CellVerdict>& against, double margin) {
  const std::optional<double> best = BestAtOrBelow(against, c.cost_uniform);
  c.gap = best && *best > c.top1 ? *best - c.top1 : 0;
  c.on_front = c.gap == 0;
  c.promoted = c.gap <= margin;
}

// promoted / pruned / waiting from the cells' verdicts and the trials' states.
void Sort(const std::vector<RungTrial>& trials, RungDecision& d) {
  std::map<std::string, bool> promoted;
  for (const CellVerdict& c : d.cells) promoted[c.cell] = c.promoted;
  d.promoted.clear(), d.pruned.clear(), d.waiting.clear();
  for (const RungTrial& t : trials) {
    if (!Live(t)) continue;
    auto it = promoted.find(t.cell);
    if (it != promoted.end() && it->second) d.promoted.push_back(t.trial_id);
    else if (t.state == RungTrialState::kReported) d.pruned.push_back({t.trial_id, t.top1, t.epoch});
    else d.waiting.push_back(t.trial_id);
  }
}

double AutoMargin(const std::vector<CellVerdict>& cells) {
  double spread = 0;
  for (const CellVerdict& c : cells) spread = std::max(spread, c.spread);
  return std::max(kMinAutoMargin, 2 * spread);
}

}  // namespace

RungMargin MarginOf(const SearchSpec& s) { return {s.margin_auto, s.margin_auto ? 0 : s.margin}; }

RungPolicy PolicyOf(const SearchSpec& s) {
  return {s.quorum, std::chrono::seconds(s.rung_timeout_seconds)};
}

RungReadiness RungReady(const std::vector<RungTrial>& trials, const RungPolicy& policy,
                        const Clock& clock) {
  RungReadiness r;
  int64_t latest_ms = 0;
  for (const RungTrial& t : trials) {
    if (!Live(t)) continue;
    ++r.live;
    if (t.state != RungTrialState::kReported) continue;
    ++r.reported;
    latest_ms = std::max(latest_ms, t.reported_ms);
  }
  r.quorum = std::max(1, static_cast<int>(std::ceil(policy.quorum * r.live - 1e-9)));
  if (r.live == 0) {
    r.why = "no live trial";
    return r;
  }
  if (r.reported == r.live) {
    r.ready = true;
    r.why = absl::StrCat("all ", r.live, " live trials reported");
    return r;
  }
  const std::string counts = absl::StrCat(r.reported, " of ", r.live, " live trials reported");
  if (r.reported < r.quorum) {
    r.why = absl::StrCat(counts, "; waiting for all, or for ", r.quorum, " and a quiet timeout");
    return r;
  }
  r.decide_at_ms = latest_ms + policy.timeout.count();
  r.ready = NowMs(clock) >= r.decide_at_ms;
  r.why = absl::StrCat(counts, "; quorum of ", r.quorum, " reached",
                       r.ready ? " and no report for " : ", deciding after ",
                       policy.timeout.count() / 1000, " s", r.ready ? "" : " without a report");
  return r;
}

RungDecision DecideRung(const std::vector<RungTrial>& trials, const RungMargin& margin) {
  RungDecision d;
  d.cells = ScoreCells(trials);
  d.margin = margin.automatic ? AutoMargin(d.cells) : margin.points;
  for (CellVerdict& c : d.cells) Judge(c, d.cells, d.margin);
  Sort(trials, d);
  return d;
}

RungDecision ExtendRung(const RungDecision& decided, const std::vector<RungTrial>& trials) {
  RungDecision d = decided;
  std::map<std::string, bool> known;
  for (const CellVerdict& c : d.cells) known[c.cell] = true;
  for (CellVerdict& c : ScoreCells(trials)) {
    if (known.count(c.cell)) continue;
    c.late = true;
    Judge(c, decided.cells, d.margin);
    known[c.cell] = true;
    d.cells.push_back(std::move(c));
  }
  Sort(trials, d);
  return d;
}

json RungDecisionToJson(const RungDecision& d) {
  json cells = json::array();
  for (const CellVerdict& c : d.cells) {
    cells.push_back({{"cell", c.cell}, {"cost_uniform", c.cost_uniform}, {"top1", c.top1},
                     {"spread", c.spread}, {"seeds", c.seeds}, {"on_front", c.on_front},
                     {"promoted", c.promoted}, {"gap", c.gap}, {"late", c.late}});
  }
  json pruned = json::array();
  for (const PrunedTrial& p : d.pruned)
    pruned.push_back({{"trial_id", p.trial_id}, {"top1", p.top1}, {"epoch", p.epoch}});
  return {{"margin", d.margin}, {"cells", cells}, {"promoted", d.promoted},
          {"pruned", pruned},   {"waiting", d.waiting}};
}

namespace {

template <typename T>
absl::Status Get(const json& obj, const std::string& where, const char* key, T* out) {
  auto it = obj.find(key);
  const std::string field = absl::StrCat(where, key);
  if (it == obj.end()) return absl::InvalidArgumentError(field + ": missing");
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": wrong type, got ", it->dump()));
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return absl::InvalidArgumentError(field + ": must be a boolean");
  } else if constexpr (std::is_arithmetic_v<T>) {
    if (!it->is_number()) return absl::InvalidArgumentError(field + ": must be a number");
  }
  return absl::OkStatus();
}

#define WRPN_GET(obj, where, key, out)                          \
  if (absl::Status st = Get(obj, where, key, out); !st.ok()) return st

absl::StatusOr<CellVerdict> CellFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(where + ": must be an object");
  const std::string w = where + ".";
  CellVerdict c;
  WRPN_GET(j, w, "cell", &c.cell);
  WRPN_GET(j, w, "cost_uniform", &c.cost_uniform);
  WRPN_GET(j, w, "top1", &c.top1);
  WRPN_GET(j, w, "spread", &c.spread);
  WRPN_GET(j, w, "seeds", &c.seeds);
  WRPN_GET(j, w, "on_front", &c.on_front);
  WRPN_GET(j, w, "promoted", &c.promoted);
  WRPN_GET(j, w, "gap", &c.gap);
  WRPN_GET(j, w, "late", &c.late);
  return c;
}

absl::StatusOr<PrunedTrial> PrunedFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(where + ": must be an object");
  const std::string w = where + ".";
  PrunedTrial p;
  WRPN_GET(j, w, "trial_id", &p.trial_id);
  WRPN_GET(j, w, "top1", &p.top1);
  WRPN_GET(j, w, "epoch", &p.epoch);
  return p;
}

absl::Status IdsFromJson(const json& j, const char* key, std::vector<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array())
    return absl::InvalidArgumentError(absl::StrCat(key, ": must be a list of trial ids"));
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_number_integer())
      return absl::InvalidArgumentError(absl::StrCat(key, "[", i, "]: must be a trial id"));
    out->push_back((*it)[i].get<int64_t>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RungDecision> RungDecisionFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("rung decision: must be an object");
  RungDecision d;
  WRPN_GET(j, "", "margin", &d.margin);
  for (const char* key : {"cells", "pruned"}) {
    if (!j.contains(key) || !j[key].is_array())
      return absl::InvalidArgumentError(absl::StrCat(key, ": must be a list"));
  }
  for (size_t i = 0; i < j["cells"].size(); ++i) {
    absl::StatusOr<CellVerdict> c = CellFromJson(j["cells"][i], absl::StrCat("cells[", i, "]"));
    if (!c.ok()) return c.status();
    d.cells.push_back(*std::move(c));
  }
  for (size_t i = 0; i < j["pruned"].size(); ++i) {
    absl::StatusOr<PrunedTrial> p = PrunedFromJson(j["pruned"][i], absl::StrCat("pruned[", i, "]"));
    if (!p.ok()) return p.status();
    d.pruned.push_back(*p);
  }
  if (absl::Status st = IdsFromJson(j, "promoted", &d.promoted); !st.ok()) return st;
  if (absl::Status st = IdsFromJson(j, "waiting", &d.waiting); !st.ok()) return st;
  return d;
}

#undef WRPN_GET

}  // namespace wrpn::server
