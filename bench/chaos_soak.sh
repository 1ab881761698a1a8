#!/usr/bin/env bash
# Soak run of the coordinator kill loop (tests/chaos/coordinator_kill_test.cc): the coordinator is
# SIGKILLed KILLS times per round during a running 24-trial fake-trainer sweep (half at random
# moments, half at named points of metric ingest, checkpoints, completions and lease grants), for
# ROUNDS rounds; after every kill the database must pass `PRAGMA integrity_check` and the lease
# invariants, and each round's grid must equal an undisturbed run's. CI runs 20 kills once
# (`ctest -L chaos`); this is the long version. Prints one summary line per round.
#
#   bench/chaos_soak.sh [--build DIR] [--kills N] [--rounds R]
#   e.g. bench/chaos_soak.sh --build build-chaos --kills 200 --rounds 5
set -euo pipefail
build=build
kills=100
rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin="$build/tests/chaos/chaos_test"
if [[ ! -x "$bin" ]]; then
  echo "$bin not built: ninja -C $build chaos_test" >&2
  exit 2
fi
failed=0
for ((r = 1; r <= rounds; r++)); do
  start=$(date +%s)
  if out=$(WRPN_CHAOS_KILLS="$kills" "$bin" \
             --gtest_filter='ChaosTest.CoordinatorSigkilledAtRandomPointsLosesNothing' 2>&1); then
    status=ok
  else
    status=FAILED
    failed=$((failed + 1))
    echo "$out" | tail -60 >&2
  fi
  summary=$(echo "$out" | grep '^\[chaos\]' || true)
  echo "round $r/$rounds: $status in $(( $(date +%s) - start )) s: ${summary#\[chaos\] }"
done
echo "$((rounds - failed))/$rounds rounds passed ($kills kills each)"
[[ $failed -eq 0 ]]
