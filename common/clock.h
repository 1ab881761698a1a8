#pragma once
// Clock seam: everything that reasons about time (leases, ETAs, timeouts) asks a Clock, so tests
// drive time with FakeClock instead of sleeping. SystemClock is stateless and thread-safe.
#include <chrono>

namespace wrpn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for records shown to people and stored in the db).
  virtual std::chrono::system_clock::time_point Now() const = 0;
  // Monotonic time (for durations and deadlines).
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point SteadyNow() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace wrpn
