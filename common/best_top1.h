#pragma once
// A trial's best top-1: the one rule the coordinator applies to every top-1 value it is told
// (each epoch's metric point and the final result). Header-only, stateless.
#include <cmath>
#include <optional>

namespace wrpn {

// The best top-1 after one more value; non-finite values do not count.
inline std::optional<double> BestTop1(std::optional<double> best, double top1) {
  if (!std::isfinite(top1) || (best && *best >= top1)) return best;
  return top1;
}

}  // namespace wrpn
