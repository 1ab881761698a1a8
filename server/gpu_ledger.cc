#include "server/gpu_ledger.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/gpu_share.h"

namespace wrpn::server {

void GpuLedger::Place(const std::string& worker, const std::vector<int>& slots,
                      const Holding& h) {
  for (int s : slots) held_[worker][s].push_back(h);
}

void GpuLedger::Release(const std::string& worker, int64_t trial_id) {
  auto w = held_.find(worker);
  if (w == held_.end()) return;
  for (auto it = w->second.begin(); it != w->second.end();) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const Holding& h) { return h.trial_id == trial_id; }),
            v.end());
    it = v.empty() ? w->second.erase(it) : std::next(it);
  }
  if (w->second.empty()) held_.erase(w);
}

int64_t GpuLedger::UsedUnits(const std::string& worker, int slot) const {
  auto w = held_.find(worker);
  if (w == held_.end()) return 0;
  auto s = w->second.find(slot);
  if (s == w->second.end()) return 0;
  int64_t used = 0;
  for (const Holding& h : s->second) used += h.units;
  return used;
}

std::vector<int> GpuLedger::FirstFit(const std::string& worker, size_t gpus, int count,
                                     const Holding& h) const {
  std::vector<int> out;
  for (size_t s = 0; s < gpus && static_cast<int>(out.size()) < count; ++s) {
    const int64_t used = UsedUnits(worker, static_cast<int>(s));
    if (used + h.units <= kGpuShareUnits) out.push_back(static_cast<int>(s));
  }
  return out;
}

std::vector<GpuView> GpuLedger::Views(const std::string& worker,
                                      const std::vector<GpuRecord>& gpus) const {
  std::vector<GpuView> out(gpus.size());
  auto w = held_.find(worker);
  for (size_t s = 0; s < gpus.size(); ++s) {
    GpuView& v = out[s];
    v.slot = static_cast<int>(s);
    v.memory_bytes = gpus[s].memory_bytes;
    v.free_units = kGpuShareUnits;
    if (w == held_.end()) continue;
    auto it = w->second.find(v.slot);
    if (it == w->second.end()) continue;
    for (const Holding& h : it->second) {
      v.free_units -= h.units;
      v.reserved_bytes += h.memory_bytes;
      v.sweeps.insert(h.sweep_id);
    }
    v.free_units = std::max<int64_t>(0, v.free_units);
  }
  return out;
}

void GpuLedger::Describe(const std::string& worker, pb::Worker* m) const {
  auto w = held_.find(worker);
  int idle = 0;
  for (int s = 0; s < m->gpus_size(); ++s) {
    pb::Gpu* g = m->mutable_gpus(s);
    const int64_t used = UsedUnits(worker, s);
    idle += used == 0;
    g->set_share_used(std::min(1.0, ShareOf(used)));
    if (w == held_.end()) continue;
    auto it = w->second.find(s);
    if (it == w->second.end()) continue;
    int64_t reserved = 0;
    for (const Holding& h : it->second) {
      reserved += h.memory_bytes;
      g->add_trials(h.trial_id);
    }
    g->set_memory_reserved_bytes(reserved);
  }
  m->set_free_gpus(std::min(m->free_gpus(), idle));
}

void GpuLedger::ShareGauge(const std::string& worker, const std::string& name,
                           const std::vector<GpuRecord>& gpus,
                           std::map<std::vector<std::string>, double>* out) const {
  for (size_t s = 0; s < gpus.size(); ++s) {
    (*out)[{name, absl::StrCat(gpus[s].index)}] =
        std::min(1.0, ShareOf(UsedUnits(worker, static_cast<int>(s))));
  }
}

}  // namespace wrpn::server
