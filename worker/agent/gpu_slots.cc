#include "worker/agent/gpu_slots.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/gpu_share.h"

namespace wrpn::agent {

int64_t GpuSlots::UnitsOf(const ::wrpn::v1::Lease& lease) {
  const int64_t share = ShareUnitsOf(lease.gpu_share());
  return share > 0 ? share : kGpuShareUnits;
}

absl::StatusOr<std::vector<int>> GpuSlots::Take(const ::wrpn::v1::Lease& lease, int ranks) {
  absl::StatusOr<std::vector<int>> slots = Pick(lease, ranks);
  if (slots.ok()) Hold(*slots, UnitsOf(lease));
  return slots;
}

void GpuSlots::Hold(const std::vector<int>& slots, int64_t units) {
  for (int s : slots) used_.at(static_cast<size_t>(s)) += units;
}

absl::StatusOr<std::vector<int>> GpuSlots::Pick(const ::wrpn::v1::Lease& lease, int ranks) const {
  const int64_t units = UnitsOf(lease);
  std::vector<int> slots(lease.gpu_slots().begin(), lease.gpu_slots().end());
  if (slots.empty()) {
    std::vector<std::pair<int64_t, int>> order;  // fullest first for fractions, in slot order
    for (size_t s = 0; s < used_.size(); ++s) {
      if (used_[s] + units <= kGpuShareUnits) order.push_back({-used_[s], static_cast<int>(s)});
    }
    if (units < kGpuShareUnits) std::sort(order.begin(), order.end());
    for (const auto& [neg_used, s] : order) {
      if (static_cast<int>(slots.size()) < ranks) slots.push_back(s);
    }
    if (static_cast<int>(slots.size()) < ranks) {
      return absl::FailedPreconditionError(absl::StrCat(
          Idle(), " of this worker's ", used_.size(), " GPUs are idle; the trial needs ", ranks,
          units < kGpuShareUnits ? absl::StrCat(" with ", FormatShare(ShareOf(units)), " free") : ""));
    }
  }
  if (static_cast<int>(slots.size()) != ranks) {
    return absl::FailedPreconditionError(absl::StrCat("the lease places ", slots.size(),
                                                      " GPU(s) for ", ranks, " rank(s)"));
  }
  for (int s : slots) {
    if (s < 0 || static_cast<size_t>(s) >= used_.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("GPU slot ", s, " does not exist on this worker (", used_.size(), " GPUs)"));
    }
    if (used_[s] + units > kGpuShareUnits) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GPU slot ", s, " has ", FormatShare(ShareOf(kGpuShareUnits - used_[s])),
          " of its share free; the trial needs ", FormatShare(ShareOf(units))));
    }
  }
  return slots;
}

void GpuSlots::Give(const std::vector<int>& slots, int64_t units) {
  for (int s : slots) {
    if (s >= 0 && static_cast<size_t>(s) < used_.size()) used_[s] = std::max<int64_t>(0, used_[s] - units);
  }
}

int GpuSlots::Idle() const {
  return static_cast<int>(std::count(used_.begin(), used_.end(), 0));
}

int GpuSlots::Wanted() const {
  const int64_t smallest = kGpuShareUnits / kMaxGpuShareDenominator;
  int n = 0;
  for (int64_t u : used_) n += static_cast<int>((kGpuShareUnits - u) / smallest);
  return n;
}

}  // namespace wrpn::agent
