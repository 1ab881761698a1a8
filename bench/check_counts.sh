#!/usr/bin/env bash
# Runs a benchmark (briefly) and checks its report lines (bench/bench_report.h): it must exit 0,
# print a `COUNTS <bench> <phase> commit=<commit> ...` line for every BENCH:PHASE listed and no
# FAILED line. With --expect-failed it must instead exit non-zero and print a FAILED line for each
# BENCH:PHASE listed, with a reason. No timing is checked. The `bench` ctest label runs this.
#   bench/check_counts.sh [--expect-failed] BENCH:PHASE[,BENCH:PHASE...] -- COMMAND [ARGS...]
set -uo pipefail
expect_failed=0
if [[ ${1:-} == --expect-failed ]]; then expect_failed=1; shift; fi
phases=${1:?usage: check_counts.sh [--expect-failed] BENCH:PHASE,... -- COMMAND...}
shift
[[ ${1:-} == -- ]] || { echo "check_counts.sh: expected -- before the command" >&2; exit 2; }
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
bad=0
complain() { echo "check_counts.sh: $*" >&2; bad=1; }
IFS=, read -ra want <<<"$phases"
if ((expect_failed)); then
  ((rc != 0)) || complain "exit status 0, expected a failure"
  for bp in "${want[@]}"; do
    grep -Eq "^FAILED ${bp%%:*} ${bp#*:} commit=[^ ]+ reason=.+" "$out" ||
      complain "no 'FAILED ${bp%%:*} ${bp#*:} commit=... reason=...' line"
  done
  if grep -Eq "^COUNTS .* rate_per_s=" "$out"; then complain "a failed phase printed a rate"; fi
else
  ((rc == 0)) || complain "exit status $rc"
  for bp in "${want[@]}"; do
    grep -Eq "^COUNTS ${bp%%:*} ${bp#*:} commit=[^ ]+( |$)" "$out" ||
      complain "no 'COUNTS ${bp%%:*} ${bp#*:} commit=...' line"
  done
  if grep -q "^FAILED " "$out"; then complain "FAILED lines: $(grep '^FAILED ' "$out" | tr '\n' ' ')"; fi
fi
exit $bad
