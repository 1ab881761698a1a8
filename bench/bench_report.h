// The report lines every benchmark prints (docs/benchmarks.md, "What a benchmark prints"):
//
//   COUNTS <bench> <phase> commit=<commit> key=value ...      what the phase did, and its rates
//   FAILED <bench> <phase> commit=<commit> reason=<why>       the work was refused or skipped
//
// A phase adds its counts (what it sent, what was accepted, what was stored), its checks (the
// work it counts was really done) and its rates; Finish() prints the COUNTS line, with the rates
// only if every check held, and otherwise one FAILED line per failed check, and returns false:
// the benchmark then exits non-zero (exit status 1). bench/CMakeLists.txt's wrpn_bench() gives
// a target the commit it was built from (bench_commit.h, `git describe --always --dirty` at build
// time); shell benchmarks print the same lines with bench/report.sh. Not thread safe: one Report
// per phase, used by the thread that prints.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#if __has_include("bench_commit.h")
#include "bench_commit.h"
#endif
#ifndef WRPN_BENCH_COMMIT
#define WRPN_BENCH_COMMIT "unknown"
#endif

namespace wrpn::bench {

inline const char* Commit() { return WRPN_BENCH_COMMIT; }

inline void PrintFailed(const std::string& bench, const std::string& phase, const std::string& reason) {
  std::printf("FAILED %s %s commit=%s reason=%s\n", bench.c_str(), phase.c_str(), Commit(),
              reason.c_str());
  std::fflush(stdout);
}

// For work that fails before a phase can count anything (setup refused): FAILED, exit 1.
[[noreturn]] inline void Fail(const std::string& bench, const std::string& phase, const std::string& reason) {
  PrintFailed(bench, phase, reason);
  std::exit(1);
}

class Report {
 public:
  Report(std::string bench, std::string phase) : bench_(std::move(bench)), phase_(std::move(phase)) {}

  Report& Count(const std::string& key, int64_t v) { return Add(key, std::to_string(v), false); }
  Report& Text(const std::string& key, const std::string& v) { return Add(key, v, false); }
  // A rate or timing: printed only when every check held.
  Report& Rate(const std::string& key, double v, int decimals = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return Add(key, buf, true);
  }
  // A check that the counted work was done; `reason` says what went wrong when it was not.
  Report& Expect(bool ok, const std::string& reason) {
    if (!ok) failures_.push_back(reason);
    return *this;
  }

  [[nodiscard]] bool ok() const { return failures_.empty(); }

  // Prints the COUNTS line (and the FAILED lines); returns ok().
  [[nodiscard]] bool Finish() const {
    std::string line = "COUNTS " + bench_ + " " + phase_ + " commit=" + Commit();
    for (const auto& [key, value, rate] : fields_) {
      if (!rate || ok()) line += " " + key + "=" + value;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    for (const std::string& r : failures_) PrintFailed(bench_, phase_, r);
    return ok();
  }

 private:
  struct Field {
    std::string key, value;
    bool rate;
  };
  Report& Add(const std::string& key, std::string value, bool rate) {
    fields_.push_back({key, std::move(value), rate});
    return *this;
  }

  std::string bench_, phase_;
  std::vector<Field> fields_;
  std::vector<std::string> failures_;
};

}  // namespace wrpn::bench
