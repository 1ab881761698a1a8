#!/usr/bin/env bash
# Re-measures every CPU figure of docs/benchmarks.md and of docs/reliability.md's "Scale" section
# on this machine, in about 9 minutes once built (run it on a quiet machine: nothing else
# running). Each step prints the command it runs, the load average before it, and the
# benchmark's own output with its COUNTS lines (bench/bench_report.h); a step whose work was
# refused or lost stops the script (exit 1). The end is a summary of every COUNTS line, and the
# whole log is also written to LOG (default BUILD/remeasure-<commit>.log).
#   bench/remeasure.sh [--build DIR] [--log FILE] [--skip-build] [--only STEP[,STEP...]]
# Steps: leases points slots1 train configs micro ddp fleet5000 fleet6000 huge sweep.
# GPU figures are not re-measured here (scripts/gpu-check.sh on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/report.sh
build=build log= skip_build=0 only=
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --log) log=$2; shift ;;
    --skip-build) skip_build=1 ;;
    --only) only=,$2,; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "remeasure.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
log=${log:-$build/remeasure-$(bench_commit).log}
exec > >(tee "$log") 2>&1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ((!skip_build)); then
  cmake --build "$build" --target coordinator_bench fleet_load train_bench wrpn-coordinator wrpn wrpn-train
fi
echo "remeasure.sh: commit $(bench_commit), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
# step NAME COMMAND...: runs one measurement unless --only leaves it out.
step() {
  local name=$1
  shift
  [[ -z $only || $only == *,$name,* ]] || return 0
  echo
  echo "== $name: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "\$ $*"
  local t0=$SECONDS rc
  set +e
  "$@" 2>&1 | tee "$tmp/step.out"
  rc=${PIPESTATUS[0]}
  set -e
  grep -a '^COUNTS ' "$tmp/step.out" | sed "s/^/$name: /" >>"$tmp/counts" || true
  ((rc == 0)) || bench_fail remeasure.sh "$name" "'$*' exited $rc"
  echo "== $name: $((SECONDS - t0)) s"
}
b=$build/bench
# docs/benchmarks.md, "Coordinator" (~2.5 min)
step leases "$b/coordinator_bench" --phase leases --seconds 30 --workers 8 --slots 4
step points "$b/coordinator_bench" --phase metrics --seconds 30 --workers 8 --batch 1000
step slots1 "$b/coordinator_bench" --phase leases --seconds 10 --workers 8 --slots 1
# docs/benchmarks.md, "Trainer on this CPU" (~2 min): three runs back to back, quantizers alone
for run in 1 2 3; do step train "$b/train_bench" --steps 10 --warmup 3; done
step configs "$b/train_bench" --steps 10 --warmup 3 --configs 2:32:32,2:32:4,2:2:32,2:2:4
step micro "$b/train_bench" --micro --steps 10 --warmup 3
# docs/benchmarks.md, "Data-parallel scaling on this CPU" (~1 min)
step ddp bench/ddp_scaling.sh "$build" 2
# docs/reliability.md, "Scale" (~4 min): fleets, the 1 GiB request, a 100,000-trial sweep
step fleet5000 bench/scale.sh --build "$build" --phase fleet --workers 5000 --seconds 120
step fleet6000 bench/scale.sh --build "$build" --phase fleet --workers 6000 --seconds 60
step huge bench/scale.sh --build "$build" --phase huge
step sweep bench/scale.sh --build "$build" --phase sweep --trials 100000
echo
echo "== summary ($(bench_commit)): every COUNTS line of this run, by step"
cat "$tmp/counts"
