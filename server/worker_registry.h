#pragma once
// WorkerRegistry: the registered workers (their records, when each was last heard from and the
// commands waiting for its next heartbeat reply), their ids, liveness and the view the scheduler
// gets of them. The leases a worker holds are the LeaseTable's. Thread-compatible: the
// Coordinator calls it under its mutex; storing the records is the Coordinator's.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "server/lease_table.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;

struct WorkerEntry {
  WorkerRecord rec;
  SteadyTime last_seen;
  std::vector<pb::WorkerCommand> commands;  // sent with the next heartbeat reply
};

class WorkerRegistry {
 public:
  // Replaces every worker by `records`, each heard from at `now` (a silent worker gets a full
  // TTL from a restart); new ids continue after the highest loaded.
  void Load(std::vector<WorkerRecord> records, SteadyTime now);
  // An id ("w-N") no worker has.
  std::string NewId();
  WorkerEntry& Put(const WorkerRecord& rec, SteadyTime now);
  WorkerEntry* Find(const std::string& id);
  const WorkerEntry* Find(const std::string& id) const;
  std::map<std::string, WorkerEntry>& all() { return workers_; }
  const std::map<std::string, WorkerEntry>& all() const { return workers_; }

  // The worker called at `now` (wall time `now_ms`); true when it was lost and is alive again
  // (its record changed).
  bool Touch(WorkerEntry& w, SteadyTime now, int64_t now_ms);
  // Moves the commands waiting for `w` to `out`; returns the leases they are about.
  std::set<std::string> TakeCommands(WorkerEntry& w,
                                     google::protobuf::RepeatedPtrField<pb::WorkerCommand>* out);
  // Marks the workers silent for longer than `ttl` lost; returns their changed records.
  std::vector<WorkerRecord> MarkSilentLost(SteadyTime now, std::chrono::milliseconds ttl);

  // What the scheduler sees: free GPUs and CPU slots after `leases`. Lost workers are left out
  // except `requester` (which is calling, so alive); with `use_reported` the requester's free
  // GPUs are capped by the `reported_free_gpus` it sent.
  std::vector<WorkerView> Views(const LeaseTable& leases, const std::string& requester,
                                int reported_free_gpus, bool use_reported) const;
  // Where rank 0 of a gang on worker `id` is reached: its address, else its name; "" if unknown.
  std::string RendezvousAddress(const std::string& id) const;

 private:
  std::map<std::string, WorkerEntry> workers_;
  int64_t next_id_ = 1;
};

}  // namespace wrpn::server
