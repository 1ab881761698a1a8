#!/usr/bin/env bash
# data_accuracy.sh TREE [EPOCHS] [SEEDS...]: top-1 of the same small training run through the
# fast image path and through the reference path (WRPN_RESAMPLE=reference: full decode + double
# bilinear), per seed, on an image-folder TREE (e.g. the one bench/data_bench generates:
# --dir D makes D/jpeg). LeNet-5 at 32x32 crops, so the fast path decodes at 1/8 or 1/4 and its
# pixels differ most from the reference (docs/data.md). Prints one line per run.
set -euo pipefail
tree=$1 epochs=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))
seeds=("${@:-0 1}")
train=${WRPN_TRAIN:-build/worker/trainer/wrpn-train}
for seed in ${seeds[@]}; do
  for path in fast reference; do
    top1=$(WRPN_RESAMPLE=$([[ $path == reference ]] && echo reference || echo fast) \
      "$train" train --network lenet5 --dataset imagefolder --data-path "$tree" --image-size 32 \
        --epochs "$epochs" --batch-size 64 --seed "$seed" 2>/dev/null |
      python3 -c 'import json,sys
ev=[json.loads(l) for l in sys.stdin if l.startswith("{")]
f=[e for e in ev if e.get("event")=="finished"]
print(f[0]["top1"] if f else "failed: "+str([e for e in ev if e.get("event")=="failed"]))')
    echo "seed $seed $path top1 $top1"
  done
done
