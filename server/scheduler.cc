#include "server/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/gpu_share.h"

namespace wrpn::server {
namespace {

struct Need {
  int gpus = 0;
  int64_t units = 0;
  int64_t memory = 0;
  int64_t sweep = 0;
};

bool MemoryOk(int64_t have, int64_t need) { return need == 0 || have == 0 || have >= need; }

// The slots a trial needing `n` takes on `w` now, never one of `reserved`; nullopt when it does
// not fit. Fractions: best fit (see scheduler.h); whole GPUs: the lowest empty slots.
std::optional<std::vector<int>> Place(const WorkerView& w, const Need& n,
                                      const std::set<int>& reserved) {
  if (!w.schedulable) return std::nullopt;
  if (n.units > 0) {
    const GpuView* best = nullptr;
    std::tuple<int, int64_t, int64_t, int> best_key;
    for (const GpuView& g : w.gpus) {
      if (reserved.count(g.slot) || g.free_units < n.units) continue;
      const int64_t mem_left = g.memory_bytes == 0 ? 0 : g.memory_bytes - g.reserved_bytes - n.memory;
      if (n.memory > 0 && g.memory_bytes > 0 && mem_left < 0) continue;
      const std::tuple<int, int64_t, int64_t, int> key{g.sweeps.count(n.sweep) ? 0 : 1,
                                                       g.free_units - n.units, mem_left, g.slot};
      if (best == nullptr || key < best_key) best = &g, best_key = key;
    }
    if (best == nullptr) return std::nullopt;
    return std::vector<int>{best->slot};
  }
  if (n.gpus == 0) {
    if (w.free_cpu_slots < 1) return std::nullopt;
    return std::vector<int>{};
  }
  if (w.free_gpus < n.gpus) return std::nullopt;
  if (w.gpus.empty()) return std::vector<int>{};
  std::vector<int> slots;
  for (const GpuView& g : w.gpus) {
    if (reserved.count(g.slot) || g.free_units != kGpuShareUnits ||
        !MemoryOk(g.memory_bytes, n.memory))
      continue;
    slots.push_back(g.slot);
    if (static_cast<int>(slots.size()) == n.gpus) return slots;
  }
  return std::nullopt;
}

// Whether `w` could run a whole-GPU trial needing `n` once all its GPUs are idle.
bool CouldHost(const WorkerView& w, const Need& n) {
  if (!w.schedulable || w.total_gpus < n.gpus) return false;
  if (w.gpus.empty()) return true;
  int able = 0;
  for (const GpuView& g : w.gpus) able += MemoryOk(g.memory_bytes, n.memory) ? 1 : 0;
  return able >= n.gpus;
}

// The `count` GPUs of `w` closest to idle: least share in use, then lowest slot.
std::set<int> ClosestToIdle(const WorkerView& w, int count) {
  std::vector<std::pair<int64_t, int>> order;
  for (const GpuView& g : w.gpus) order.push_back({kGpuShareUnits - g.free_units, g.slot});
  std::sort(order.begin(), order.end());
  std::set<int> out;
  for (size_t i = 0; i < order.size() && static_cast<int>(out.size()) < count; ++i)
    out.insert(order[i].second);
  return out;
}

std::string GpuWord(int n) { return n == 1 ? "GPU" : "GPUs"; }

}  // namespace

void PriorityScheduler::Enqueue(const QueuedTrial& t) {
  Remove(t.trial_id);
  Demand d{t.gpus_per_node, t.nodes, t.share_units, t.gpu_memory_bytes};
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
  const std::set<int> none;
  // The asking worker first, then the other nodes a gang needs; nullopt when it does not fit.
  auto try_place = [&](const Demand& demand, const Key& key,
                       const std::set<int>& reserved) -> std::optional<Assignment> {
    const auto [gpus, nodes, units, memory] = demand;
    const Need n{gpus, units, memory, std::get<1>(key)};
    auto mine = Place(*self, n, reserved);
    if (!mine) return std::nullopt;
    Assignment a{std::get<3>(key), {requester}, {*mine}};
    const bool alone = nodes > 1 && self->step_nodes >= nodes;  // one Slurm step
    for (const WorkerView& w : workers) {
      if (alone || static_cast<int>(a.worker_ids.size()) >= nodes) break;
      if (w.id == requester) continue;
      if (auto theirs = Place(w, n, none)) {
        a.worker_ids.push_back(w.id);
        a.gpu_slots.push_back(*theirs);
      }
    }
    if (!alone && static_cast<int>(a.worker_ids.size()) < nodes) return std::nullopt;
    return a;
  };
  // The first whole-GPU or gang trial that waits although this worker could run it once idle
  // reserves the GPUs closest to idle against every trial behind it.
  std::optional<Key> blocker;
  std::set<int> reserved;
  for (const auto& [demand, keys] : queues_) {
    const auto [gpus, nodes, units, memory] = demand;
    if (gpus == 0 || keys.empty() || self->gpus.empty()) continue;
    const Key& head = *keys.begin();
    if (blocker && !(head < *blocker)) continue;
    const Need n{gpus, units, memory, std::get<1>(head)};
    if (!CouldHost(*self, n) || try_place(demand, head, none)) continue;
    const QueuedTrial t{std::get<3>(head), -std::get<0>(head), std::get<1>(head),
                        std::get<2>(head), gpus, nodes, units, memory};
    if (nodes > 1 && !Unplaceable(t, workers).empty()) continue;  // it may never form
    blocker = head;
    reserved = ClosestToIdle(*self, gpus);
  }
  std::optional<Key> best;
  std::optional<Assignment> chosen;
  for (const auto& [demand, keys] : queues_) {
    if (keys.empty()) continue;
    const Key& head = *keys.begin();
    if (best && !(head < *best)) continue;
    auto a = try_place(demand, head, blocker && *blocker < head ? reserved : none);
    if (!a) continue;
    best = head;
    chosen = std::move(a);
  }
  if (!chosen) return std::nullopt;
  Remove(chosen->trial_id);
  return chosen;
}

std::string PriorityScheduler::Unplaceable(const QueuedTrial& t,
                                           const std::vector<WorkerView>& workers) const {
  if (workers.empty()) return "no worker is registered";
  const std::string mem = t.gpu_memory_bytes > 0
                              ? absl::StrFormat(" with %.3g GiB", t.gpu_memory_bytes / double(1LL << 30))
                              : "";
  if (t.share_units > 0) {
    for (const WorkerView& w : workers) {
      for (const GpuView& g : w.gpus) {
        if (MemoryOk(g.memory_bytes, t.gpu_memory_bytes)) return "";
      }
    }
    return absl::StrCat("no worker has a GPU", mem);
  }
  int able = 0;
  const Need n{t.gpus_per_node, 0, t.gpu_memory_bytes, t.sweep_id};
  for (const WorkerView& w : workers) {
    WorkerView any = w;
    any.schedulable = true;
    if (t.gpus_per_node > 0 ? CouldHost(any, n) : true) {
      ++able;
      if (t.nodes > 1 && w.step_nodes >= t.nodes) return "";  // runs it alone as a Slurm step
    }
  }
  if (able == 0) {
    return absl::StrCat("no worker has ", t.gpus_per_node, " ", GpuWord(t.gpus_per_node), mem,
                        !mem.empty() && t.gpus_per_node > 1 ? " each" : "");
  }
  if (able < t.nodes) {
    return absl::StrCat("only ", able, " worker", able > 1 ? "s have " : " has ",
                        t.gpus_per_node, " GPUs; the trial needs ", t.nodes, " nodes");
  }
  return "";
}

}  // namespace wrpn::server
