#pragma once
// LeaseTable: the live leases, the order they expire in and what each worker's leases occupy
// (GPUs, CPU slots). Pure bookkeeping: no clock, no store, no lock; the Coordinator owns one and
// calls it under its mutex. A lease is removed only by Drop (its attempt ended) or Clear.
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/metric_ingest.h"
#include "server/store.h"
#include "wrpn/v1/coordinator.pb.h"

namespace wrpn::server {

namespace pb = ::wrpn::v1;
using SteadyTime = std::chrono::steady_clock::time_point;

struct LeaseEntry {
  std::string lease_id;
  int64_t trial_id = 0;
  int attempt = 0;
  int64_t token = 0;
  std::string worker_id;
  int rank = 0;
  int gpus = 0;  // GPUs it holds on its worker; 0 = it takes one CPU slot
  SteadyTime expires;
  bool delivered = false;
  int64_t progress_epoch = 0;  // from heartbeats
  double progress_fraction = 0;
  // The newest point stored per metric name for this attempt (server/metric_ingest.h). Known
  // from the grant on; after a restart read from the store on the lease's first report.
  NewestPoints newest_point;
  bool newest_point_known = false;
  int master_port = 0;  // rank 0 of a multi-node attempt: its TCPStore port, once reported
};

// What a worker's leases occupy.
struct WorkerSlots {
  int gpus = 0;
  int cpu_slots = 0;
};

// One lease per node of attempt `a` (rank order), each holding `gpus` and expiring at `expires`;
// not delivered, newest points not known: the caller says otherwise.
std::vector<LeaseEntry> AttemptLeases(const AttemptRecord& a, int gpus, SteadyTime expires);

class LeaseTable {
 public:
  void Add(LeaseEntry lease);
  void Drop(const std::string& lease_id);  // an unknown id is a no-op
  void Clear();

  LeaseEntry* Find(const std::string& lease_id);
  const LeaseEntry* Find(const std::string& lease_id) const;
  // The lease `ref` names, if it is live and `ref` carries its fencing token; otherwise
  // FAILED_PRECONDITION saying which of the two it is. Renews nothing.
  absl::StatusOr<LeaseEntry*> Check(const pb::LeaseRef& ref);
  // The lease `ref` names if it is live, carries its token and is held by `worker_id`.
  LeaseEntry* FindHeld(const pb::LeaseRef& ref, const std::string& worker_id);
  // The TCPStore port rank 0 of `l`'s attempt (`current`, the trial's newest) reported; 0 = not
  // yet, or rank 0's lease is gone or of another attempt.
  int RendezvousPort(const LeaseEntry& l, const AttemptRecord& current) const;
  // Moves the lease's expiry to `expires` and marks it delivered (its worker has it).
  void Renew(LeaseEntry& lease, SteadyTime expires);
  // The lease that expires first, if it expires at or before `now`; nullptr otherwise.
  const LeaseEntry* FirstExpired(SteadyTime now) const;

  // The ids of the leases held by `worker_id` (empty when none).
  const std::set<std::string>& LeasesOf(const std::string& worker_id) const;
  WorkerSlots UsedBy(const std::string& worker_id) const;
  size_t size() const { return leases_.size(); }

 private:
  struct Held {
    std::set<std::string> leases;
    WorkerSlots used;
  };
  std::unordered_map<std::string, LeaseEntry> leases_;
  std::set<std::pair<SteadyTime, std::string>> expiry_;  // (expires, lease id)
  std::map<std::string, Held> by_worker_;
};

}  // namespace wrpn::server
