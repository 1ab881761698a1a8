#include "server/grid_builder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

namespace wrpn::server {
namespace {

using CellKey = std::tuple<std::string, double, int, int, std::string>;

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// SUCCEEDED when every seed did; else running > queued > failed > cancelled > pruned.
pb::TrialState CellState(const std::vector<const TrialRecord*>& trials) {
  std::set<TrialState> seen;
  for (const TrialRecord* t : trials) seen.insert(t->state);
  for (TrialState s : {TrialState::kRunning, TrialState::kQueued, TrialState::kFailed,
                       TrialState::kCancelled, TrialState::kPruned})
    if (seen.count(s)) return static_cast<pb::TrialState>(s);
  return pb::TRIAL_SUCCEEDED;
}

void FillCell(const std::vector<const TrialRecord*>& trials, pb::GridCell* c) {
  const TrialRecord& first = *trials.front();
  c->set_network(first.network);
  c->set_width(first.width);
  c->set_wbits(first.wbits);
  c->set_abits(first.abits);
  c->set_scheme(CellScheme(first));
  c->set_fma_ratio(first.fma_ratio);
  c->set_cost_uniform(first.cost_uniform);
  c->set_cost_first_last_fp32(first.cost_first_last_fp32);
  c->set_trial_id(first.id);
  std::vector<double> finals, bests, top5s, pruned;
  int64_t pruned_epoch = 0;
  for (const TrialRecord* t : trials) {
    pb::SeedResult* s = c->add_seeds();
    s->set_seed(t->seed);
    s->set_trial_id(t->id);
    s->set_state(static_cast<pb::TrialState>(t->state));
    if (t->best_top1) s->set_best_top1(*t->best_top1), bests.push_back(*t->best_top1);
    if (t->final_top1) s->set_final_top1(*t->final_top1), finals.push_back(*t->final_top1);
    if (t->final_top5) s->set_final_top5(*t->final_top5), top5s.push_back(*t->final_top5);
    if (t->state == TrialState::kPruned && t->pruned_top1) {
      s->set_pruned_top1(*t->pruned_top1);
      s->set_pruned_epoch(t->pruned_epoch);
      pruned.push_back(*t->pruned_top1);
      pruned_epoch = std::max(pruned_epoch, t->pruned_epoch);
    }
  }
  if (!pruned.empty()) {
    c->set_pruned_top1(Mean(pruned));
    c->set_pruned_epoch(pruned_epoch);
  }
  c->set_state(CellState(trials));
  if (!bests.empty()) c->set_best_top1(Mean(bests));
  if (!top5s.empty()) c->set_final_top5(Mean(top5s));
  if (!finals.empty()) {
    const double mu = Mean(finals);
    c->set_final_top1(mu);
    double var = 0;
    for (double x : finals) var += (x - mu) * (x - mu);
    // One seed has no spread: the field stays unset (absent/null), not 0.
    if (finals.size() > 1) c->set_final_top1_std(std::sqrt(var / (finals.size() - 1)));
  }
}

bool IsOwnBaseline(const pb::GridCell& c) {
  return c.width() == 1.0 && c.wbits() == 32 && c.abits() == 32 && c.has_final_top1();
}

// our_delta: against the 1x 32/32 cell of the same network and scheme, else of the network.
void SetOurDeltas(pb::GetGridResponse* resp) {
  std::map<std::pair<std::string, std::string>, double> by_scheme;
  std::map<std::string, double> by_network;
  for (const pb::GridCell& c : resp->cells()) {
    if (!IsOwnBaseline(c)) continue;
    by_scheme.emplace(std::make_pair(c.network(), c.scheme()), c.final_top1());
    by_network.emplace(c.network(), c.final_top1());
  }
  for (pb::GridCell& c : *resp->mutable_cells()) {
    if (!c.has_final_top1()) continue;
    if (auto it = by_scheme.find({c.network(), c.scheme()}); it != by_scheme.end())
      c.set_our_delta(c.final_top1() - it->second);
    else if (auto jt = by_network.find(c.network()); jt != by_network.end())
      c.set_our_delta(c.final_top1() - jt->second);
  }
}

void JoinPaper(const PaperIndex& paper, const PaperRef& ref, pb::GetGridResponse* resp) {
  if (paper.version().empty()) return;  // no tables loaded: no comparison at all
  std::set<std::string> refs;
  for (pb::GridCell& c : *resp->mutable_cells()) {
    const std::string net = ReferenceNetwork(c.network(), ref);
    if (net.empty()) continue;
    c.set_paper_network(net);
    refs.insert(net);
    const PaperEntry* e = paper.Find(net, c.width(), c.wbits(), c.abits());
    if (e == nullptr) continue;
    c.set_paper_table(e->table);
    if (e->cost) c.set_paper_cost(*e->cost);
    if (!e->top1) continue;
    c.set_paper_top1(*e->top1);
    if (const PaperEntry* base = paper.Baseline(net)) c.set_paper_delta(*e->top1 - *base->top1);
  }
  for (const std::string& net : refs) {
    const PaperEntry* base = paper.Baseline(net);
    if (base == nullptr) continue;
    pb::PaperBaseline* b = resp->add_baselines();
    b->set_network(net);
    b->set_top1(*base->top1);
    b->set_table(base->table);
  }
}

}  // namespace

std::string CellScheme(const TrialRecord& t) { return t.scheme; }

pb::GetGridResponse BuildGrid(int64_t sweep_id, const std::vector<const TrialRecord*>& trials,
                              const PaperIndex& paper, const PaperRef& ref) {
  pb::GetGridResponse resp;
  resp.set_sweep_id(sweep_id);
  for (int b : {32, 8, 4, 2, 1}) resp.add_bits_axis(b);
  resp.set_paper_version(paper.version());
  std::map<CellKey, std::vector<const TrialRecord*>> cells;
  std::vector<CellKey> order;
  for (const TrialRecord* t : trials) {
    CellKey key{t->network, t->width, t->wbits, t->abits, CellScheme(*t)};
    auto& v = cells[key];
    if (v.empty()) order.push_back(key);
    v.push_back(t);
  }
  for (const CellKey& key : order) FillCell(cells[key], resp.add_cells());
  SetOurDeltas(&resp);
  JoinPaper(paper, ref, &resp);
  return resp;
}

}  // namespace wrpn::server
