#pragma once
// An attempt's folders on disk: <work_dir>/attempts/t<T>-a<A>-n<node>/ (trial.json, rank-R.log,
// agent.log) and its checkpoint folder under the worker's checkpoint root (attempt_plan.h names
// them); the retention sweep over both. Stateless functions; callers serialise writes to one
// attempt's folder (the agent's loop thread does).
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/trial_config.h"
#include "worker/agent/attempt_plan.h"

namespace wrpn::agent {

// Creates the attempt folder and its checkpoint folder; INTERNAL naming both on failure.
[[nodiscard]] absl::Status CreateAttemptFolders(const AttemptPlan& plan);
// Puts checkpoint `src` in place as <ckpt_dir>/last.pt (hard link, else copy). NOT_FOUND when
// `src` is not a readable file here (no shared checkpoint storage), INTERNAL when it cannot be
// linked or copied.
[[nodiscard]] absl::Status PlaceCheckpoint(const std::string& src, const std::string& ckpt_dir);
// Writes trial.json whole (a temporary file renamed over it).
[[nodiscard]] absl::Status WriteTrialConfig(const std::string& path, const TrialConfig& config);
// rank-R.log for each (global rank, stderr tail) and agent.log with `notes`; nothing when the
// folder does not exist.
void WriteAttemptLogs(const std::string& dir,
                      const std::vector<std::pair<int, std::string>>& rank_tails,
                      const std::string& notes);
// Removes the entries of each root whose newest file is older than `retention`, except those in
// `in_use` (absolute, normalised paths); returns how many were removed.
int RemoveOldFolders(const std::vector<std::string>& roots, const std::set<std::string>& in_use,
                     std::chrono::hours retention);
// A trial's checkpoints under the checkpoint root (after it succeeded).
void RemoveTrialCheckpoints(const std::string& checkpoint_root, int64_t trial_id);

}  // namespace wrpn::agent
