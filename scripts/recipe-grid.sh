#!/usr/bin/env bash
# Trains the recipe check of docs/recipe.md: LeNet-5 on full Fashion-MNIST at widths 1x and 2x for
# (w, a) in {32/32, 8/8, 4/4, 2/4, 2/2, 1/1}, one recipe for all cells, and prints the top-1 grid
# as a markdown table. Usage: scripts/recipe-grid.sh OUT_DIR [EPOCHS] [extra wrpn-train flags...]
set -euo pipefail
out=${1:?usage: recipe-grid.sh OUT_DIR [EPOCHS] [flags...]}
epochs=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))
extra=("$@")
bin=${WRPN_TRAIN:-build/worker/trainer/wrpn-train}
mkdir -p "$out"
pairs=("32 32" "8 8" "4 4" "2 4" "2 2" "1 1")
for width in 1 2; do
  for pair in "${pairs[@]}"; do
    read -r wb ab <<< "$pair"
    log="$out/lenet5_w${width}_wb${wb}_ab${ab}.jsonl"
    if [[ -s "$log" ]] && grep -q '"finished"' "$log"; then continue; fi
    "$bin" train --network lenet5 --width "$width" --wbits "$wb" --abits "$ab" --epochs "$epochs" \
      --seed 0 "${extra[@]}" > "$log" 2> "${log%.jsonl}.log"
  done
done
python3 - "$out" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    name = os.path.basename(f)[:-6]
    fin = [json.loads(l) for l in open(f) if '"finished"' in l]
    if fin:
        _, w, wb, ab = name.split("_")
        rows[(w[1:], wb[2:], ab[2:])] = fin[-1]
pairs = ["32/32", "8/8", "4/4", "2/4", "2/2", "1/1"]
print("| width | " + " | ".join(f"w{p.split('/')[0]}/a{p.split('/')[1]}" for p in pairs) + " |")
print("|---|" + "---|" * len(pairs))
for w in ["1", "2"]:
    cells = []
    for p in pairs:
        wb, ab = p.split("/")
        r = rows.get((w, wb, ab))
        cells.append(f"{r['top1']:.2f}" if r else "-")
    print(f"| {w}x | " + " | ".join(cells) + " |")
PY
