#!/usr/bin/env bash
# The main job in one command: install what is missing, build, start a coordinator on loopback
# (SQLite in a state folder) and one CPU worker, submit a sweep (default: the Fashion-MNIST quick
# sweep), show live progress, then print the grid next to the paper's numbers and write a plot.
# Ctrl-C stops everything this script started. Usage:
#   scripts/demo.sh [--keep] [--spec FILE] [--state DIR] [--build DIR] [--no-build] [--cpu-trials N]
#     --keep          leave the coordinator and the worker running for you to try the CLI
#     --no-build      use the binaries already in the build folder (no install, no compile)
#     --cpu-trials N  trials the worker runs at once, sharing the cores (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=0
no_build=0
cpu_trials=1
spec=examples/sweeps/fashion-quick.yaml
state=".state/demo-$(date +%Y%m%d-%H%M%S)"
build=${WRPN_BUILD_DIR:-build}
while (($#)); do
  case "$1" in
    --keep) keep=1 ;;
    --no-build) no_build=1 ;;
    --spec) spec=${2:?--spec needs a file}; shift ;;
    --state) state=${2:?--state needs a folder}; shift ;;
    --build) build=${2:?--build needs a folder}; shift ;;
    --cpu-trials) cpu_trials=${2:?--cpu-trials needs a number}; shift
      [[ "$cpu_trials" =~ ^[1-9][0-9]*$ ]] || { echo "demo: --cpu-trials: not a positive integer: $cpu_trials" >&2; exit 2; } ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -f "$spec" ]] || { echo "demo: --spec: no such file: $spec" >&2; exit 2; }

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }

if ((no_build)); then
  for b in server/wrpn-coordinator worker/agent/wrpn-worker client/wrpn worker/trainer/wrpn-train; do
    [[ -x "$build/$b" ]] || { echo "demo: --no-build: $build/$b is missing" >&2; exit 2; }
  done
elif true; then
scripts/install-deps.sh
if [[ -f "$build/build.ninja" ]]; then
  say "reusing the existing build in $build/ (only changed files are rebuilt)"
else
  say "configuring a new build in $build/ (the first build takes a while on 2 cores)"
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ninja -C "$build" -n wrpn-coordinator wrpn-worker wrpn wrpn-train | grep -q 'no work to do'; then
  say "build is up to date: nothing to compile"
else
  cmake --build "$build" -j "$(nproc)" --target wrpn-coordinator wrpn-worker wrpn wrpn-train
fi
fi
bin=$(cd "$build" && pwd)
wrpn() { "$bin/client/wrpn" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir -p "$state"
state=$(cd "$state" && pwd)
grpc=127.0.0.1:$(free_port)
http=127.0.0.1:$(free_port)
say "state folder: $state (coordinator db wrpn.db, worker work/, logs, plot)"

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((keep)) && ((rc == 0)); then return; fi
  say "stopping the worker, its trainers and the coordinator"
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  pkill -KILL -f -- "$state/work" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each service in its own process group (setsid), so stopping it stops its children too.
setsid "$bin/server/wrpn-coordinator" --listen "$grpc" --http-listen "$http" --db "$state/wrpn.db" \
  >"$state/coordinator.log" 2>&1 &
pids+=($!)
export WRPN_ADDR=$grpc
for _ in $(seq 100); do
  wrpn worker list >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$state/coordinator.log" >&2; exit 1; }
  sleep 0.1
done
say "coordinator on $grpc (metrics and JSON API on http://$http)"
setsid "$bin/worker/agent/wrpn-worker" --coordinator "$grpc" --name "demo-cpu" --gpus none \
  --cpus "$(nproc)" --max-cpu-trials "$cpu_trials" --work-dir "$state/work" --trainer "$bin/worker/trainer/wrpn-train" --grace 5 \
  >"$state/worker.log" 2>&1 &
pids+=($!)
say "one CPU worker started (log: $state/worker.log)"

id=$(wrpn -o json sweep submit "$spec" | python3 -c 'import json, sys; print(json.load(sys.stdin)["sweep_id"])')
say "submitted $spec as sweep $id; watching it (Ctrl-C stops everything)"
wrpn sweep watch "$id" || say "the sweep did not finish cleanly: see 'wrpn trial list $id'"
echo
wrpn grid "$id" --paper
wrpn plot "$id" --out "$state/pareto.png" >/dev/null
wrpn grid "$id" -o csv >"$state/grid.csv"
say "plot written to $state/pareto.png; grid as CSV in $state/grid.csv"
if ((keep)); then
  say "left running (--keep): coordinator pid ${pids[0]}, worker pid ${pids[1]}. Try:"
  echo "  export WRPN_ADDR=$grpc"
  echo "  $build/client/wrpn sweep list; $build/client/wrpn grid $id --paper; $build/client/wrpn trial list $id"
  echo "  stop them with: kill -TERM -- -${pids[1]} -${pids[0]}"
fi
