#include "server/init_dependencies.h"

#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/quant_scheme.h"

namespace wrpn::server {
namespace {

using Cell = std::tuple<std::string, double, int64_t>;  // network, width, seed

bool Fp32(int wbits, int abits) { return wbits == 32 && abits == 32; }

}  // namespace

std::vector<TrialPoint> MissingFp32Points(const SweepSpec& spec,
                                          const std::vector<TrialPoint>& points) {
  if (spec.base.init_from != kInitFromFp32) return {};
  std::set<Cell> have;
  for (const TrialPoint& p : points) {
    if (Fp32(p.wbits, p.abits)) have.emplace(p.network, p.width, p.seed);
  }
  std::vector<TrialPoint> out;
  for (const TrialPoint& p : points) {
    if (Fp32(p.wbits, p.abits) || !have.emplace(p.network, p.width, p.seed).second) continue;
    out.push_back({p.network, p.width, 32, 32, p.seed, kDefaultScheme});
  }
  return out;
}

bool WantsFp32Init(const TrialRecord& t) {
  if (Fp32(t.wbits, t.abits)) return false;
  // Cheap test first: a sweep of 100,000 trials is loaded at every start.
  if (t.config_json.find("\"init_from\":\"fp32\"") == std::string::npos) return false;
  const nlohmann::json c = nlohmann::json::parse(t.config_json, nullptr, false);
  return c.is_object() && c.value("init_from", std::string()) == kInitFromFp32;
}

InitDecision DecideInit(const TrialRecord& source) {
  const std::string which = absl::StrCat("trial ", source.id);
  switch (source.state) {
    case TrialState::kSucceeded:
      if (source.checkpoint_path.empty()) {
        return {InitGate::kFail, absl::StrCat("fp32 initialisation: ", which,
                                              " succeeded without reporting a checkpoint")};
      }
      return {InitGate::kReady, ""};
    case TrialState::kQueued:
    case TrialState::kRunning:
      return {InitGate::kWait, absl::StrCat("waiting for ", which, ": fp32 initialisation")};
    case TrialState::kFailed:
      return {InitGate::kFail,
              absl::StrCat("fp32 initialisation: ", which, " failed",
                           source.error.empty() ? "" : absl::StrCat(": ", source.error))};
    case TrialState::kCancelled:
      return {InitGate::kFail, absl::StrCat("fp32 initialisation: ", which, " was cancelled")};
  }
  return {InitGate::kWait, absl::StrCat("waiting for ", which, ": fp32 initialisation")};
}

void InitDependencies::AddSweep(const std::vector<const TrialRecord*>& trials) {
  std::map<Cell, std::map<std::string, int64_t>> fp32;  // cell -> scheme -> trial
  for (const TrialRecord* t : trials) {
    if (Fp32(t->wbits, t->abits)) fp32[{t->network, t->width, t->seed}].emplace(t->scheme, t->id);
  }
  for (const TrialRecord* t : trials) {
    if (!WantsFp32Init(*t)) continue;
    auto it = fp32.find({t->network, t->width, t->seed});
    if (it == fp32.end()) continue;  // submitted specs always have it (MissingFp32Points)
    auto same = it->second.find(t->scheme);
    auto wrpn = it->second.find(kDefaultScheme);
    const int64_t source = same != it->second.end()   ? same->second
                           : wrpn != it->second.end() ? wrpn->second
                                                      : it->second.begin()->second;
    source_[t->id] = source;
    dependents_[source].push_back(t->id);
  }
}

int64_t InitDependencies::SourceOf(int64_t trial_id) const {
  auto it = source_.find(trial_id);
  return it == source_.end() ? 0 : it->second;
}

const std::vector<int64_t>& InitDependencies::DependentsOf(int64_t source_id) const {
  static const std::vector<int64_t> kNone;
  auto it = dependents_.find(source_id);
  return it == dependents_.end() ? kNone : it->second;
}

}  // namespace wrpn::server
