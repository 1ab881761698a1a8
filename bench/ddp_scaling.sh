#!/usr/bin/env bash
# CPU data-parallel scaling of the trainer: ResNet-20 2x (28x28x1, global batch 128, synthetic
# data in memory) with 1 rank and with 2 Gloo ranks on this machine; prints training images/s and
# the gradient all-reduce wait per step (the part not hidden behind backward).
# Usage: bench/ddp_scaling.sh [BUILD_DIR] [EPOCHS] [TRAIN_IMAGES (default 1024: 8 steps an epoch)]
# Each run ends with a COUNTS line (bench/report.sh) once checked: wrpn-train exited 0, reported
# every epoch and a finished event with the expected world size, and every epoch trained
# steps x batch images; otherwise a FAILED line with the reason (and wrpn-train's stderr), exit 1.
set -euo pipefail
source "$(dirname "$0")/report.sh"
build=${1:-build}
epochs=${2:-2}
images=${3:-1024}
batch=128
bin=$build/worker/trainer/wrpn-train
[[ -x $bin ]] || bench_fail ddp_scaling.sh setup "$bin is missing (build the wrpn-train target)"
cores=$(nproc)
half=$((cores / 2 > 0 ? cores / 2 : 1))
common=(train --network resnet20 --width 2 --dataset synthetic --no-augment --batch-size "$batch"
        --epochs "$epochs" --schedule constant --lr 0.01 --train-subset "$images" --test-subset 256)
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# run PHASE WORLD ARGS...: one wrpn-train run, checked, reported.
run() {
  local phase=$1 world=$2 rc=0 out
  shift 2
  out=$("$bin" "$@" 2>"$err") || rc=$?
  ((rc == 0)) || { tail -20 "$err" >&2; bench_fail ddp_scaling.sh "$phase" "wrpn-train exited $rc"; }
  local verdict
  verdict=$(python3 -c '
import json, sys
epochs, batch, world = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ev = [json.loads(l) for l in sys.stdin if l.startswith("{")]
kind = lambda k: [e for e in ev if e.get("event") == k]
started, ep, fin = kind("started"), kind("epoch"), kind("finished")
if not started or not fin: sys.exit("ERROR no started or no finished event")
spe, ws = started[0]["steps_per_epoch"], started[0]["world_size"]
if ws != world: sys.exit(f"ERROR world size {ws}, expected {world}")
if len(ep) != epochs: sys.exit(f"ERROR {len(ep)} epoch events, expected {epochs}")
trained = [round(e["images_per_sec"] * e["seconds"]) for e in ep]
if spe < 1 or any(n != spe * batch for n in trained):
    sys.exit(f"ERROR images trained per epoch {trained} != steps x batch = {spe} x {batch}")
rep = ep[1:] or ep  # the first epoch warms up
ips = sum(e["images_per_sec"] for e in rep) / len(rep)
wait = sum(e.get("allreduce_wait_ms_per_step", 0) for e in rep) / len(rep)
print(f"{ips:9.1f} images/s   all-reduce wait {wait:7.2f} ms/step")
print(f"ranks={world} epochs={len(ep)} steps={spe * len(ep)} images={sum(trained)} "
      f"images_per_s={ips:.1f} allreduce_wait_ms_per_step={wait:.2f}")
' "$epochs" "$batch" "$world" <<<"$out" 2>&1) || bench_fail ddp_scaling.sh "$phase" "${verdict#ERROR }"
  echo "$(head -1 <<<"$verdict")"
  bench_counts ddp_scaling.sh "$phase" "$(tail -1 <<<"$verdict")"
}
echo "machine: $cores cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(bench_commit)"
echo "1 rank  x $cores threads:"; run 1rank 1 "${common[@]}" --threads "$cores"
echo "2 ranks x $half threads:"; run 2ranks 2 "${common[@]}" --nproc 2 --threads "$half"
