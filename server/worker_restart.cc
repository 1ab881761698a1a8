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
  for (auto& [id, w] : workers_.all()) {
    if (id == fresh.id || w.rec.name != fresh.name || w.rec.address != fresh.address) continue;
    for (const std::string& lease_id : leases_.LeasesOf(id))
      if (const LeaseEntry* l = leases_.Find(lease_id)) trial_ids.insert(l->trial_id);
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
