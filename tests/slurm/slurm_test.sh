#!/usr/bin/env bash
# The `slurm` tests (docs/deploy.md, "Slurm"): a real two-node Slurm cluster on this host
# (cluster.sh), a coordinator, and wrpn workers started the way a cluster user starts them, with
# deploy/slurm/wrpn-worker.sbatch. Usage: slurm_test.sh CASE SRC BUILD, CASE one of
#   array      an sbatch job array of two workers runs examples/sweeps/ci-tiny.yaml to success
#   gang       a 2-node CPU gang trial started as one `srun -N2` step by one worker (mode step)
#              gives the same result as the same trial on two workers, one per node (mode node)
#   scancel    scancel of the worker job running a trial: the trial resumes on the other worker
#              from its checkpoint and succeeds
#   timelimit  a worker job reaching its time limit drains: SIGTERM 100 s before the end
#              (--signal=B:TERM@100), checkpoint, attempt interrupted, lease handed back, and the
#              job ends COMPLETED before its time limit
# Exit 77 (ctest: skipped) with the reason when the Slurm daemons cannot start here.
set -uo pipefail
case_name=$1; src=$(cd "$2" && pwd); build=$(cd "$3" && pwd)
dir="$build/slurm-test/$case_name"
rm -rf "$dir"; mkdir -p "$dir"
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "dataset-fashion-mnist is not installed: skipping"; exit 77
fi
"$src/tests/slurm/cluster.sh" start "$dir/cluster"
rc=$?
((rc == 0)) || exit "$rc"
export SLURM_CONF="$dir/cluster/slurm.conf"
export PATH="$PATH:/usr/sbin"

coord_pid=
# Processes of this test's cluster still running: in its folder (job scripts run with
# --chdir=$dir; srun, workers and trainers inherit it) or with its SLURM_CONF (slurmstepd, which
# outlives slurmd when a job was not reaped before the daemons stopped). TERM, then KILL after
# 10 s; none may outlive the test.
leftovers() {
  local p cwd
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    if [[ "$cwd" == "$dir" || "$cwd" == "$dir"/* ]] ||
       tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$dir/cluster/slurm.conf"; then
      echo "${p#/proc/}"
    fi
  done
}
kill_leftovers() {
  local pids; pids=$(leftovers)
  [[ -z "$pids" ]] && return 0
  echo "cleanup: stopping processes left in $dir: $(echo $pids)"
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 100); do [[ -z "$(leftovers)" ]] && return 0; sleep 0.1; done
  pids=$(leftovers)
  [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
  return 0
}
cleanup() {
  local rc=$?
  trap - EXIT
  # Every job of this cluster, then wait for them to end (their workers drain) before the daemons go.
  local jobs; jobs=$(squeue --noheader --format=%A 2>/dev/null | sort -u)
  [[ -n "$jobs" ]] && scancel $jobs 2>/dev/null
  for _ in $(seq 300); do
    [[ -z "$(squeue --noheader 2>/dev/null)" ]] && break
    sleep 0.1
  done
  [[ -n "$coord_pid" ]] && kill -TERM "$coord_pid" 2>/dev/null && wait "$coord_pid" 2>/dev/null
  "$src/tests/slurm/cluster.sh" stop "$dir/cluster"
  kill_leftovers
  if ((rc != 0)); then
    echo "--- logs under $dir"
    for f in "$dir"/coordinator.log "$dir"/jobs/*.out; do
      [[ -f "$f" ]] && { echo "--- $f"; tail -n 60 "$f"; }
    done
  fi
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

grpc=127.0.0.1:$(free_port)
"$build/server/wrpn-coordinator" --listen "$grpc" --http-listen "127.0.0.1:$(free_port)" \
  --db "$dir/wrpn.db" --lease-ttl 10 --retry-backoff 0 >"$dir/coordinator.log" 2>&1 &
coord_pid=$!
export WRPN_ADDR=$grpc
wrpn() { "$build/client/wrpn" "$@"; }
for _ in $(seq 100); do wrpn worker list >/dev/null 2>&1 && break; sleep 0.1; done
wrpn worker list >/dev/null || fail "the coordinator did not start"

mkdir -p "$dir/jobs"
# sbatch_worker SBATCH_ARGS... -- WORKER_ARGS...: submits the repository's sbatch script; prints
# the job id.
sbatch_worker() {
  local sargs=() wargs=()
  while (($#)) && [[ "$1" != -- ]]; do sargs+=("$1"); shift; done
  (($#)) && shift
  wargs=("$@")
  WRPN_COORDINATOR=$grpc WRPN_WORKER="$build/worker/agent/wrpn-worker" \
  WRPN_WORK_DIR="$dir/work" WRPN_CHECKPOINT_DIR="$dir/checkpoints" \
    sbatch --parsable --output="$dir/jobs/%x-%A_%a.out" --chdir="$dir" "${sargs[@]}" \
      "$src/deploy/slurm/wrpn-worker.sbatch" --gpus "${GPUS:-none}" --address 127.0.0.1 \
      --trainer "$build/worker/trainer/wrpn-train" --max-cpu-trials 1 --acquire-interval 0.2 \
      --metrics-interval 0.5 "${wargs[@]}"
}
# wait_workers N [SECONDS]: until N workers are registered and alive.
wait_workers() {
  local n=$1 end=$((SECONDS + ${2:-60}))
  while ((SECONDS < end)); do
    [[ $(wrpn -o json worker list 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for w in json.load(sys.stdin) if w.get("state") == "alive"))' 2>/dev/null) -ge $n ]] && return 0
    sleep 0.2
  done
  wrpn worker list; squeue; fail "fewer than $n workers registered within ${2:-60} s"
}
submit() { wrpn -o json sweep submit "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["sweep_id"])'; }
# wait_sweep ID SECONDS: until the sweep has finished; fails unless every trial succeeded.
wait_sweep() {
  local id=$1 end=$((SECONDS + $2)) state=
  while ((SECONDS < end)); do
    state=$(wrpn -o json sweep show "$id" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("state", ""))')
    case "$state" in SWEEP_SUCCEEDED|SWEEP_FAILED|SWEEP_CANCELLED) break ;; esac
    sleep 0.3
  done
  wrpn trial list "$id"
  [[ "$state" == SWEEP_SUCCEEDED ]] || fail "sweep $id is '$state' (limit $2 s)"
}
trials_json() { wrpn -o json trial list "$1"; }
trial_json() { wrpn -o json trial show "$1"; }

source "$src/tests/slurm/cases.sh"
"case_$case_name"
echo PASS
