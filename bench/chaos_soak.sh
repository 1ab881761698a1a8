#!/usr/bin/env bash
# Soak run of the coordinator kill loop (tests/chaos/coordinator_kill_test.cc): the coordinator is
# SIGKILLed KILLS times per round during a running 24-trial fake-trainer sweep (half at random
# moments, half at named points of metric ingest, checkpoints, completions and lease grants), for
# ROUNDS rounds; after every kill the database must pass `PRAGMA integrity_check` and the lease
# invariants, and each round's grid must equal an undisturbed run's. CI runs 20 kills once
# (`ctest -L chaos`); this is the long version. Prints one summary line and one COUNTS line per
# round (bench/report.sh), a FAILED line for a round that failed or killed fewer times than asked,
# and exits 1 if any round did.
#
#   bench/chaos_soak.sh [--build DIR] [--kills N] [--rounds R]
#   e.g. bench/chaos_soak.sh --build build-chaos --kills 200 --rounds 5
set -euo pipefail
source "$(dirname "$0")/report.sh"
build=build
kills=100
rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin="$build/tests/chaos/chaos_test"
if [[ ! -x "$bin" ]]; then
  echo "$bin not built: ninja -C $build chaos_test" >&2
  exit 2
fi
failed=0
total_kills=0
for ((r = 1; r <= rounds; r++)); do
  start=$(date +%s)
  status=ok
  out=$(WRPN_CHAOS_KILLS="$kills" "$bin" \
          --gtest_filter='ChaosTest.CoordinatorSigkilledAtRandomPointsLosesNothing' 2>&1) || status=FAILED
  summary=$(echo "$out" | grep '^\[chaos\] coordinator kill loop' || true)
  # What the round did, from the test's summary line: a round that killed nothing measured nothing.
  done_kills=$(sed -n 's/.*, \([0-9]*\) SIGKILLs.*/\1/p' <<<"$summary")
  rows=$(sed -n 's/.*; \([0-9]*\) metric rows, \([0-9]*\) duplicate.*/\1/p' <<<"$summary")
  dups=$(sed -n 's/.*; \([0-9]*\) metric rows, \([0-9]*\) duplicate.*/\2/p' <<<"$summary")
  reason=
  if [[ $status != ok ]]; then reason="the kill-loop test failed"
  elif [[ -z $summary || -z $done_kills || -z $rows ]]; then reason="the kill-loop test printed no summary (did it run?)"
  elif ((done_kills < kills)); then reason="$done_kills kills, $kills asked for"
  elif ((dups != 0)); then reason="$dups duplicate metric points"
  fi
  secs=$(( $(date +%s) - start ))
  echo "round $r/$rounds: ${reason:-ok} in $secs s: ${summary#\[chaos\] }"
  if [[ -n $reason ]]; then
    failed=$((failed + 1))
    echo "$out" | tail -60 >&2
    echo "FAILED chaos_soak.sh round commit=$(bench_commit) reason=round $r: $reason"
  else
    total_kills=$((total_kills + done_kills))
    bench_counts chaos_soak.sh round "round=$r kills=$done_kills metric_rows=$rows duplicates=$dups seconds=$secs"
  fi
done
echo "$((rounds - failed))/$rounds rounds passed ($kills kills each)"
((failed == 0)) || exit 1
bench_counts chaos_soak.sh soak "rounds=$rounds kills=$total_kills"
