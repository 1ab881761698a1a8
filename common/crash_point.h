#pragma once
// Fault injection for crash tests. With WRPN_CRASH_AT="<op>.<stage>[:<n>]" in the environment,
// the process writes one line to stderr and SIGKILLs itself the n-th time (default: the first)
// it passes CrashPoint(op, stage); tests/chaos uses it to kill the coordinator at exact points
// (inside a store transaction, between a commit and its reply). Without the variable a call is
// one load of a static. Thread-safe.
#include <string_view>

namespace wrpn {

void CrashPoint(std::string_view op, std::string_view stage);

// The point WRPN_CRASH_AT names ("" when unset) and the hit it fires at.
struct CrashPointSetting {
  std::string_view point;
  long hit = 0;
};
CrashPointSetting ActiveCrashPoint();

}  // namespace wrpn
