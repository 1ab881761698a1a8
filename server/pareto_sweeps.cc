#include "server/pareto_sweeps.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace wrpn::server {

using nlohmann::json;

std::string ParetoCellKey(const TrialRecord& t) {
  return absl::StrFormat("%s %gx w%d/a%d %s", t.network, t.width, t.wbits, t.abits, t.scheme);
}

bool ParetoSweeps::AddSweep(const SweepRecord& s) {
  const json spec = json::parse(s.spec_json, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object() || !spec.contains("search")) return false;
  absl::StatusOr<SearchSpec> search = SearchSpecFromJson(spec["search"]);
  if (!search.ok() || search->mode != SearchMode::kPareto) return false;
  Sweep& sw = sweeps_[s.id];
  sw.search = *search;
  sw.rungs.clear();
  for (int epoch : search->rungs) sw.rungs.push_back(Rung{epoch});
  return true;
}

absl::Status ParetoSweeps::LoadDecision(const RungDecisionRecord& r) {
  const std::string where = absl::StrCat("rung_decisions row (sweep ", r.sweep_id, ", rung ", r.rung, ")");
  auto it = sweeps_.find(r.sweep_id);
  if (it == sweeps_.end())
    return absl::DataLossError(absl::StrCat(where, ": the sweep is not a pareto sweep"));
  if (r.rung < 0 || r.rung >= static_cast<int>(it->second.rungs.size()))
    return absl::DataLossError(absl::StrCat(where, ": rung: out of range of search.rungs"));
  const json d = json::parse(r.decision_json, nullptr, false);
  if (d.is_discarded()) return absl::DataLossError(absl::StrCat(where, ": decision_json: not JSON"));
  absl::StatusOr<RungDecision> decision = RungDecisionFromJson(d);
  if (!decision.ok())
    return absl::DataLossError(absl::StrCat(where, ": decision_json.", decision.status().message()));
  const json resumed = json::parse(r.resumed_json, nullptr, false);
  if (!resumed.is_array())
    return absl::DataLossError(absl::StrCat(where, ": resumed_json: not a JSON array"));
  Rung& rung = it->second.rungs[r.rung];
  for (const json& id : resumed) {
    if (!id.is_number_integer())
      return absl::DataLossError(absl::StrCat(where, ": resumed_json: not a trial id: ", id.dump()));
    rung.resumed.insert(id.get<int64_t>());
  }
  rung.decided_ms = r.decided_ms;
  rung.promoted = std::set<int64_t>(decision->promoted.begin(), decision->promoted.end());
  rung.decision = *std::move(decision);
  return absl::OkStatus();
}

const ParetoSweeps::Sweep* ParetoSweeps::Find(int64_t sweep_id) const {
  auto it = sweeps_.find(sweep_id);
  return it == sweeps_.end() ? nullptr : &it->second;
}

const SearchSpec* ParetoSweeps::Search(int64_t sweep_id) const {
  const Sweep* s = Find(sweep_id);
  return s == nullptr ? nullptr : &s->search;
}

int ParetoSweeps::RungOfEpoch(int64_t sweep_id, int64_t epoch) const {
  const Sweep* s = Find(sweep_id);
  if (s == nullptr) return -1;
  for (size_t r = 0; r < s->rungs.size(); ++r)
    if (s->rungs[r].epoch == epoch) return static_cast<int>(r);
  return -1;
}

int64_t ParetoSweeps::RungEpoch(int64_t sweep_id, int rung) const {
  const Sweep* s = Find(sweep_id);
  return s == nullptr || rung < 0 || rung >= static_cast<int>(s->rungs.size()) ? 0 : s->rungs[rung].epoch;
}

int ParetoSweeps::RungCount(int64_t sweep_id) const {
  const Sweep* s = Find(sweep_id);
  return s == nullptr ? 0 : static_cast<int>(s->rungs.size());
}

int ParetoSweeps::TargetRung(const TrialRecord& t) const {
  const Sweep* s = Find(t.sweep_id);
  if (s == nullptr) return kToTheEnd;
  for (size_t r = 0; r < s->rungs.size(); ++r) {
    const Rung& rung = s->rungs[r];
    if (rung.resumed.count(t.id)) return kToTheEnd;
    if (!rung.decision || !rung.promoted.count(t.id)) return static_cast<int>(r);
  }
  return kToTheEnd;
}

int64_t ParetoSweeps::StopEpoch(const TrialRecord& t) const {
  const int r = TargetRung(t);
  return r == kToTheEnd ? 0 : RungEpoch(t.sweep_id, r);
}

void ParetoSweeps::RecordReport(const TrialRecord& t, int rung, double top1, int64_t ms) {
  reports_[t.id][rung] = {top1, ms};
}

bool ParetoSweeps::HasReport(int64_t trial_id, int rung) const {
  auto it = reports_.find(trial_id);
  return it != reports_.end() && it->second.count(rung) > 0;
}

bool ParetoSweeps::InRung(const Sweep& s, int64_t trial_id, int rung) const {
  for (int r = 0; r < rung; ++r) {
    if (s.rungs[r].resumed.count(trial_id) || !s.rungs[r].promoted.count(trial_id)) return false;
  }
  return true;
}

std::vector<RungTrial> ParetoSweeps::RungTrials(const std::vector<const TrialRecord*>& sweep_trials,
                                                int rung) const {
  std::vector<RungTrial> out;
  if (sweep_trials.empty()) return out;
  const Sweep* s = Find(sweep_trials.front()->sweep_id);
  if (s == nullptr || rung < 0 || rung >= static_cast<int>(s->rungs.size())) return out;
  out.reserve(sweep_trials.size());
  for (const TrialRecord* t : sweep_trials) {
    if (!InRung(*s, t->id, rung)) continue;
    RungTrial rt;
    rt.trial_id = t->id;
    rt.cell = ParetoCellKey(*t);
    rt.cost_uniform = t->cost_uniform;
    auto rep = reports_.find(t->id);
    if (rep != reports_.end() && rep->second.count(rung)) {
      rt.state = RungTrialState::kReported;
      rt.top1 = rep->second.at(rung).top1;
      rt.epoch = s->rungs[rung].epoch;
      rt.reported_ms = rep->second.at(rung).ms;
    } else if (t->state == TrialState::kFailed) {
      rt.state = RungTrialState::kFailed;
    } else if (t->state == TrialState::kCancelled) {
      rt.state = RungTrialState::kCancelled;
    } else {
      rt.state = RungTrialState::kPending;
    }
    out.push_back(std::move(rt));
  }
  return out;
}

const std::optional<RungDecision>& ParetoSweeps::Decision(int64_t sweep_id, int rung) const {
  static const std::optional<RungDecision> kNone;
  const Sweep* s = Find(sweep_id);
  if (s == nullptr || rung < 0 || rung >= static_cast<int>(s->rungs.size())) return kNone;
  return s->rungs[rung].decision;
}

RungDecisionRecord ParetoSweeps::RowOf(int64_t sweep_id, int rung) const {
  const Rung& r = sweeps_.at(sweep_id).rungs.at(rung);
  RungDecisionRecord row;
  row.sweep_id = sweep_id;
  row.rung = rung;
  row.epoch = r.epoch;
  row.decided_ms = r.decided_ms;
  row.decision_json = r.decision ? RungDecisionToJson(*r.decision).dump() : "{}";
  row.resumed_json = json(std::vector<int64_t>(r.resumed.begin(), r.resumed.end())).dump();
  return row;
}

RungDecisionRecord ParetoSweeps::SetDecision(int64_t sweep_id, int rung, RungDecision d,
                                             int64_t decided_ms) {
  Rung& r = sweeps_.at(sweep_id).rungs.at(rung);
  if (!r.decision) r.decided_ms = decided_ms;
  r.promoted = std::set<int64_t>(d.promoted.begin(), d.promoted.end());
  r.decision = std::move(d);
  r.decide_at_ms = 0;
  return RowOf(sweep_id, rung);
}

RungDecisionRecord ParetoSweeps::Resume(int64_t sweep_id, int rung, int64_t trial_id) {
  sweeps_.at(sweep_id).rungs.at(rung).resumed.insert(trial_id);
  return RowOf(sweep_id, rung);
}

std::set<std::pair<int64_t, int>> ParetoSweeps::UndecidedRungs() const {
  std::set<std::pair<int64_t, int>> out;
  for (const auto& [trial, at] : parked_) {
    const Sweep* s = Find(at.first);
    if (s != nullptr && !s->rungs.at(at.second).decision) out.insert(at);
  }
  return out;
}

void ParetoSweeps::SetWaitReason(int64_t sweep_id, int rung, std::string why, int64_t decide_at_ms) {
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end() || rung < 0 || rung >= static_cast<int>(it->second.rungs.size())) return;
  Rung& r = it->second.rungs[rung];
  r.why = std::move(why);
  r.decide_at_ms = decide_at_ms;
}

std::string ParetoSweeps::WaitReason(int64_t trial_id) const {
  auto it = parked_.find(trial_id);
  if (it == parked_.end()) return "";
  const auto [sweep_id, rung] = it->second;
  const Rung& r = sweeps_.at(sweep_id).rungs.at(rung);
  return absl::StrCat("waiting for rung ", rung + 1, " (epoch ", r.epoch, ")",
                      r.why.empty() ? "" : absl::StrCat(": ", r.why));
}

int64_t ParetoSweeps::NextDecisionMs() const {
  int64_t next = 0;
  for (const auto& [id, s] : sweeps_) {
    for (const Rung& r : s.rungs) {
      if (!r.decision && r.decide_at_ms > 0 && (next == 0 || r.decide_at_ms < next)) next = r.decide_at_ms;
    }
  }
  return next;
}

}  // namespace wrpn::server
