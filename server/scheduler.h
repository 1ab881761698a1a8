#pragma once
// Scheduler: pure dispatch logic, no I/O and no clock. Holds the queue of trials waiting for a
// lease and decides which trial(s) a worker asking for work gets: highest priority first, then
// earliest sweep, then expansion order; a trial needing G GPUs per node goes only to workers with
// G free GPUs (0-GPU trials take one of a worker's CPU slots); a trial over N > 1 nodes is
// gang-scheduled: the asking worker plus N-1 other schedulable workers that fit, all or nothing,
// or the asking worker alone when it starts N-node gangs itself as one Slurm step (step_nodes).
// A trial that fits the asking worker but not its gang is skipped (later, smaller trials may be
// backfilled). Not thread-safe; the coordinator serialises calls.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace wrpn::server {

struct QueuedTrial {
  int64_t trial_id = 0;
  int priority = 0;
  int64_t sweep_id = 0;
  int64_t index = 0;
  int gpus_per_node = 0;
  int nodes = 1;
};

// What the scheduler needs to know about a worker.
struct WorkerView {
  std::string id;
  int total_gpus = 0;
  int free_gpus = 0;
  int free_cpu_slots = 0;
  bool schedulable = true;  // alive and not draining
  int step_nodes = 1;       // gangs of up to this many nodes it runs alone (one Slurm step)
};

struct Assignment {
  int64_t trial_id = 0;
  std::vector<std::string> worker_ids;  // node rank order; [0] is the asking worker
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void Enqueue(const QueuedTrial& t) = 0;
  // No-op when the trial is not queued.
  virtual void Remove(int64_t trial_id) = 0;
  virtual bool Contains(int64_t trial_id) const = 0;
  virtual size_t size() const = 0;
  // Picks the next trial for `requester` (one of `workers`) and removes it from the queue.
  // nullopt when nothing queued fits.
  virtual std::optional<Assignment> Next(const std::string& requester,
                                         const std::vector<WorkerView>& workers) = 0;
  // Why a trial could never be placed on the registered workers ("no worker has 8 GPUs"), or ""
  // when some set of registered workers could run it once free.
  virtual std::string Unplaceable(const QueuedTrial& t,
                                  const std::vector<WorkerView>& workers) const = 0;
};

class PriorityScheduler final : public Scheduler {
 public:
  void Enqueue(const QueuedTrial& t) override;
  void Remove(int64_t trial_id) override;
  bool Contains(int64_t trial_id) const override { return where_.count(trial_id) > 0; }
  size_t size() const override { return where_.size(); }
  std::optional<Assignment> Next(const std::string& requester,
                                 const std::vector<WorkerView>& workers) override;
  std::string Unplaceable(const QueuedTrial& t,
                          const std::vector<WorkerView>& workers) const override;

 private:
  // Dispatch order: priority desc, sweep asc, index asc.
  using Key = std::tuple<int, int64_t, int64_t, int64_t>;  // (-priority, sweep, index, trial)
  using Demand = std::pair<int, int>;                      // (gpus_per_node, nodes)
  static Key KeyOf(const QueuedTrial& t) {
    return {-t.priority, t.sweep_id, t.index, t.trial_id};
  }
  // One ordered queue per demand, so a head that does not fit never costs a scan of the rest.
  std::map<Demand, std::set<Key>> queues_;
  std::map<int64_t, std::pair<Demand, Key>> where_;
};

}  // namespace wrpn::server
