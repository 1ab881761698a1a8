#!/usr/bin/env bash
# CPU data-parallel scaling of the trainer: ResNet-20 2x (28x28x1, global batch 128, synthetic
# data in memory) with 1 rank and with 2 Gloo ranks on this machine; prints training images/s and
# the gradient all-reduce wait per step (the part not hidden behind backward).
# Usage: bench/ddp_scaling.sh [BUILD_DIR] [EPOCHS]
set -euo pipefail
build=${1:-build}
epochs=${2:-2}
bin=$build/worker/trainer/wrpn-train
cores=$(nproc)
common=(train --network resnet20 --width 2 --dataset synthetic --no-augment --batch-size 128
        --epochs "$epochs" --schedule constant --lr 0.01)
run() {
  "$bin" "$@" 2>/dev/null | python3 -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin]
ep = [e for e in ev if e.get("event") == "epoch"][1:] or [e for e in ev if e.get("event") == "epoch"]
ips = sum(e["images_per_sec"] for e in ep) / len(ep)
wait = sum(e.get("allreduce_wait_ms_per_step", 0) for e in ep) / len(ep)
print(f"{ips:9.1f} images/s   all-reduce wait {wait:7.2f} ms/step")'
}
echo "machine: $cores cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo -n "1 rank  x $cores threads: "; run "${common[@]}" --threads "$cores"
echo -n "2 ranks x $((cores / 2 > 0 ? cores / 2 : 1)) threads: "; run "${common[@]}" --nproc 2 --threads $((cores / 2 > 0 ? cores / 2 : 1))
