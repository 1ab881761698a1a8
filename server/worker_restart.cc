// Coordinator::ReleaseLeasesOfRestartedLocked: a worker that registers under the name and address
// an earlier registration used is that worker restarted (an agent re-registers under a new id only
// when the coordinator no longer knows its old one); its trainers died with its
// previous agent. The earlier registration's leases are released at once (their attempts end as
// expired and the trials are re-queued, with no retry backoff) instead of waiting out the lease
// TTL, and the earlier registration is marked lost. Runs under the coordinator's mutex.
#include <set>

#include "absl/strings/str_cat.h"
#include "server/coordinator.h"

namespace wrpn::server {

void Coordinator::ReleaseLeasesOfRestartedLocked(const WorkerRecord& fresh, Mutation& m) {
  std::set<int64_t> trial_ids;
  std::set<std::string> old_ids;
  for (auto& [id, w] : workers_) {
    if (id == fresh.id || w.rec.name != fresh.name || w.rec.address != fresh.address) continue;
    old_ids.insert(id);
    for (const std::string& lease_id : w.leases)
      if (auto it = leases_.find(lease_id); it != leases_.end()) trial_ids.insert(it->second.trial_id);
    if (!w.rec.lost) {
      w.rec.lost = true;
      m.workers.push_back(w.rec);
    }
  }
  for (int64_t trial_id : trial_ids) {
    TrialEntry& t = trials_.at(trial_id);
    EndAttemptLocked(t, AttemptOutcome::kExpired,
                     absl::StrCat("worker ", fresh.name, " restarted (registered again as ",
                                  fresh.id, "); the leases of its earlier registration were "
                                  "released at once"),
                     /*retry=*/true, "", m);
  }
}

}  // namespace wrpn::server
