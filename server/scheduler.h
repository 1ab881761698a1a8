#pragma once
// Scheduler: pure dispatch logic, no I/O and no clock. Holds the queue of trials waiting for a
// lease and decides which trial(s) a worker asking for work gets: highest priority first, then
// earliest sweep, then expansion order; a trial needing G GPUs per node goes only to workers with
// G free GPUs (0-GPU trials take one of a worker's CPU slots); a trial over N > 1 nodes is
// gang-scheduled: the asking worker plus N-1 other schedulable workers that fit, all or nothing,
// or the asking worker alone when it starts N-node gangs itself as one Slurm step (step_nodes).
// A trial that fits the asking worker but not its gang is skipped (later, smaller trials may be
// backfilled).
//
// GPUs, when the worker view lists them (WorkerView::gpus): a whole-GPU trial takes empty GPUs
// (lowest slots first); a fractional trial (a share 1/k of one GPU, common/gpu_share.h) goes to
// the GPU of the asking worker where it fits best: within 1.0 of share and, when both are known,
// within the GPU's memory, preferring a GPU that already holds trials of the same sweep, then the
// one it leaves least room on (best fit), then the lowest slot.
// No starvation of whole GPUs: the first whole-GPU or gang trial in dispatch order that does not
// fit now, but would fit the asking worker once its GPUs are idle, reserves the G GPUs of that
// worker closest to idle (least share in use, then lowest slot); trials behind it in dispatch
// order are not placed on those GPUs, so they drain and it starts as soon as they have.
// Not thread-safe; the coordinator serialises calls.
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
  int64_t share_units = 0;       // > 0: a fraction of one GPU (gpus_per_node is 0)
  int64_t gpu_memory_bytes = 0;  // the trial's GPU memory; 0 = any
};

// One GPU of a worker as the coordinator has placed trials on it.
struct GpuView {
  int slot = 0;                  // position in the worker's registered GPUs
  int64_t free_units = 0;        // of kGpuShareUnits; 0 when a whole-GPU trial holds it
  int64_t memory_bytes = 0;      // 0 = unknown (not checked)
  int64_t reserved_bytes = 0;    // memory of the fractional trials on it
  std::set<int64_t> sweeps;      // sweeps with a trial on it
};

// What the scheduler needs to know about a worker.
struct WorkerView {
  std::string id;
  int total_gpus = 0;
  int free_gpus = 0;
  int free_cpu_slots = 0;
  bool schedulable = true;  // alive and not draining
  int step_nodes = 1;       // gangs of up to this many nodes it runs alone (one Slurm step)
  // Empty: only the counts above are known (whole-GPU trials only; no slots are assigned).
  std::vector<GpuView> gpus;
};

struct Assignment {
  int64_t trial_id = 0;
  std::vector<std::string> worker_ids;  // node rank order; [0] is the asking worker
  // Per node (worker_ids order): the GPU slots given to the trial; empty for CPU trials and
  // workers whose view lists no GPUs.
  std::vector<std::vector<int>> gpu_slots;
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
  // (gpus_per_node, nodes, share_units, gpu_memory_bytes)
  using Demand = std::tuple<int, int, int64_t, int64_t>;
  static Key KeyOf(const QueuedTrial& t) {
    return {-t.priority, t.sweep_id, t.index, t.trial_id};
  }
  // One ordered queue per demand, so a head that does not fit never costs a scan of the rest.
  std::map<Demand, std::set<Key>> queues_;
  std::map<int64_t, std::pair<Demand, Key>> where_;
};

}  // namespace wrpn::server
