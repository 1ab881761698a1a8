#include "server/worker_registry.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/worker_labels.h"

namespace wrpn::server {

void WorkerRegistry::Load(std::vector<WorkerRecord> records, SteadyTime now) {
  workers_.clear();
  for (WorkerRecord& r : records) {
    int64_t n;
    if (absl::SimpleAtoi(r.id.substr(r.id.find('-') + 1), &n)) next_id_ = std::max(next_id_, n + 1);
    const std::string id = r.id;
    workers_[id] = WorkerEntry{std::move(r), now, {}};
  }
}

std::string WorkerRegistry::NewId() {
  std::string id;
  do {
    id = absl::StrCat("w-", next_id_++);
  } while (workers_.count(id));
  return id;
}

WorkerEntry& WorkerRegistry::Put(const WorkerRecord& rec, SteadyTime now) {
  WorkerEntry& e = workers_[rec.id];
  e.rec = rec;
  e.last_seen = now;
  return e;
}

WorkerEntry* WorkerRegistry::Find(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

const WorkerEntry* WorkerRegistry::Find(const std::string& id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

bool WorkerRegistry::Touch(WorkerEntry& w, SteadyTime now, int64_t now_ms) {
  w.last_seen = now;
  w.rec.last_heartbeat_ms = now_ms;
  if (!w.rec.lost) return false;
  w.rec.lost = false;
  return true;
}

std::set<std::string> WorkerRegistry::TakeCommands(
    WorkerEntry& w, google::protobuf::RepeatedPtrField<pb::WorkerCommand>* out) {
  std::set<std::string> about;
  for (pb::WorkerCommand& c : w.commands) {
    about.insert(c.lease().lease_id());
    *out->Add() = std::move(c);
  }
  w.commands.clear();
  return about;
}

std::vector<WorkerRecord> WorkerRegistry::MarkSilentLost(SteadyTime now,
                                                         std::chrono::milliseconds ttl) {
  std::vector<WorkerRecord> lost;
  for (auto& [id, w] : workers_) {
    if (!w.rec.lost && now - w.last_seen > ttl) {
      w.rec.lost = true;
      lost.push_back(w.rec);
    }
  }
  return lost;
}

std::vector<WorkerView> WorkerRegistry::Views(const LeaseTable& leases,
                                              const std::string& requester,
                                              int reported_free_gpus, bool use_reported) const {
  std::vector<WorkerView> views;
  for (const auto& [id, w] : workers_) {
    if (w.rec.lost && id != requester) continue;
    const WorkerSlots used = leases.UsedBy(id);
    WorkerView v;
    v.id = id;
    v.total_gpus = static_cast<int>(w.rec.gpus.size());
    v.free_gpus = std::max(0, v.total_gpus - used.gpus);
    if (id == requester && use_reported) v.free_gpus = std::min(v.free_gpus, reported_free_gpus);
    v.free_cpu_slots = std::max(0, w.rec.max_cpu_trials - used.cpu_slots);
    v.schedulable = !w.rec.draining && (id == requester || !w.rec.lost);
    if (auto it = w.rec.labels.find(kSlurmStepNodesLabel); it != w.rec.labels.end()) {
      if (!absl::SimpleAtoi(it->second, &v.step_nodes) || v.step_nodes < 1) v.step_nodes = 1;
    }
    views.push_back(std::move(v));
  }
  return views;
}

std::string WorkerRegistry::RendezvousAddress(const std::string& id) const {
  const WorkerEntry* w = Find(id);
  if (w == nullptr) return "";
  return w->rec.address.empty() ? w->rec.name : w->rec.address;
}

}  // namespace wrpn::server
