#pragma once
// FakeClock: a Clock that moves only when a test calls Advance. Thread-safe.
#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace wrpn {

class FakeClock final : public Clock {
 public:
  FakeClock()
      : wall_(std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))),
        steady_(std::chrono::steady_clock::time_point(std::chrono::hours(1))) {}
  std::chrono::system_clock::time_point Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return wall_;
  }
  std::chrono::steady_clock::time_point SteadyNow() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return steady_;
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point wall_;
  std::chrono::steady_clock::time_point steady_;
};

}  // namespace wrpn
