#include "server/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace wrpn::server {
namespace {

bool Fits(const WorkerView& w, int gpus) {
  if (!w.schedulable) return false;
  return gpus > 0 ? w.free_gpus >= gpus : w.free_cpu_slots >= 1;
}

}  // namespace

void PriorityScheduler::Enqueue(const QueuedTrial& t) {
  Remove(t.trial_id);
  Demand d{t.gpus_per_node, t.nodes};
  Key k = KeyOf(t);
  queues_[d].insert(k);
  where_[t.trial_id] = {d, k};
}

void PriorityScheduler::Remove(int64_t trial_id) {
  auto it = where_.find(trial_id);
  if (it == where_.end()) return;
  auto q = queues_.find(it->second.first);
  q->second.erase(it->second.second);
  if (q->second.empty()) queues_.erase(q);
  where_.erase(it);
}

std::optional<Assignment> PriorityScheduler::Next(const std::string& requester,
                                                  const std::vector<WorkerView>& workers) {
  auto self = std::find_if(workers.begin(), workers.end(),
                           [&](const WorkerView& w) { return w.id == requester; });
  if (self == workers.end()) return std::nullopt;
  const Key* best = nullptr;
  Demand best_demand;
  std::vector<std::string> best_gang;
  for (const auto& [demand, keys] : queues_) {
    const auto [gpus, nodes] = demand;
    if (keys.empty() || !Fits(*self, gpus)) continue;
    if (best != nullptr && !(*keys.begin() < *best)) continue;
    std::vector<std::string> gang{requester};
    const bool alone = nodes > 1 && self->step_nodes >= nodes;  // one Slurm step
    for (const WorkerView& w : workers) {
      if (alone || static_cast<int>(gang.size()) >= nodes) break;
      if (w.id != requester && Fits(w, gpus)) gang.push_back(w.id);
    }
    if (!alone && static_cast<int>(gang.size()) < nodes) continue;  // gang not complete: none
    best = &*keys.begin();
    best_demand = demand;
    best_gang = std::move(gang);
  }
  if (best == nullptr) return std::nullopt;
  Assignment a{std::get<3>(*best), std::move(best_gang)};
  Remove(a.trial_id);
  return a;
}

std::string PriorityScheduler::Unplaceable(const QueuedTrial& t,
                                           const std::vector<WorkerView>& workers) const {
  if (workers.empty()) return "no worker is registered";
  int able = 0;
  for (const WorkerView& w : workers) {
    if (t.gpus_per_node > 0 ? w.total_gpus >= t.gpus_per_node : true) {
      ++able;
      if (t.nodes > 1 && w.step_nodes >= t.nodes) return "";  // runs it alone as a Slurm step
    }
  }
  if (able == 0) {
    return absl::StrCat("no worker has ", t.gpus_per_node, " GPU", t.gpus_per_node > 1 ? "s" : "");
  }
  if (able < t.nodes) {
    return absl::StrCat("only ", able, " worker", able > 1 ? "s have " : " has ",
                        t.gpus_per_node, " GPUs; the trial needs ", t.nodes, " nodes");
  }
  return "";
}

}  // namespace wrpn::server
