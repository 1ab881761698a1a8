#!/usr/bin/env bash
# The goal of issue #19, measured on the GPU machine (see ../shared/gpu/README.md): the ResNet-20
# reproduction grid (examples/sweeps/reproduction-resnet20.yaml: 13 cells x 2 seeds, 10 epochs,
# gpus_per_node 0.25) through the service on one GPU, submit to last result, against the same
# trials run one after another by PyTorch eager on the same card (bench/pytorch_grid.py). Goal:
# service >= 4x faster. Builds the service and the trainer against the machine's LibTorch with
# the carried Debian packages (scripts/gpu/fetch-debs.sh with WRPN_GPU_SERVICE=1), runs a
# coordinator and one worker on 127.0.0.1 (with --mps when nvidia-cuda-mps-control exists), and
# writes fractional-goal.json and logs to OUT_DIR.
# Usage: scripts/gpu/fractional-goal.sh OUT_DIR [DEBS_DIR] [EPOCHS]
#   EPOCHS (default 10) shortens both sides alike when GPU time is short; the ratio is what counts.
set -uo pipefail
out=${1:?usage: scripts/gpu/fractional-goal.sh OUT_DIR [DEBS_DIR] [EPOCHS]}
debs=${2:-.gpu-debs}
epochs=${3:-10}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
start=$SECONDS
exec > >(tee -a "$out/fractional-goal.log") 2>&1
step() { echo "== [$((SECONDS - start)) s] $*"; }

step "unpacking $(ls "$debs"/*.deb | wc -l) packages"
# shellcheck source=unpack-debs.sh
source scripts/gpu/unpack-debs.sh "$debs" /tmp/sysroot
export PATH=/opt/torch/.venv/bin:/usr/local/cuda/bin:$GPU_SYSROOT/usr/bin:$PATH
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"

step "configure + build the service and the trainer"
cmake -S . -B build-gpu-svc -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX;$GPU_SYSROOT/usr" -DWRPN_NCCL_INCLUDE_DIR="$NCCL_INCLUDE_DIR" \
  >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
ninja -C build-gpu-svc -j "$(nproc)" wrpn-coordinator wrpn-worker wrpn wrpn-train >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" -A3 "$out/build.log" | head -60; exit 1; }

spec="$out/spec.yaml"
sed "s/epochs: 10,/epochs: $epochs,/" examples/sweeps/reproduction-resnet20.yaml >"$spec"
data=/usr/share/datasets
if [ ! -d "$data/fashion-mnist" ]; then
  # No Fashion-MNIST here: the same sizes as synthetic data (the compute is what is compared).
  sed -i 's/^dataset: .*/dataset: {kind: synthetic, channels: 1, height: 28, width: 28, classes: 10, train_size: 60000, test_size: 10000}/' "$spec"
  echo "dataset: synthetic, Fashion-MNIST sizes" | tee "$out/dataset.txt"
fi

step "the grid through the service ($epochs epochs)"
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
b=build-gpu-svc
$b/server/wrpn-coordinator --listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 \
  --db "$work/wrpn.db" >"$out/coordinator.log" 2>&1 &
coord=$!
mps=()
command -v nvidia-cuda-mps-control >/dev/null && mps=(--mps)
sleep 2
$b/worker/agent/wrpn-worker --coordinator "127.0.0.1:$port" --name gpu0 --work-dir "$work/w" \
  --trainer "$b/worker/trainer/wrpn-train" --data-dir "$data" "${mps[@]}" >"$out/worker.log" 2>&1 &
worker=$!
sleep 2
t0=$(date +%s.%N)
sweep=$($b/client/wrpn --addr "127.0.0.1:$port" sweep submit "$spec" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sweep_id"])')
timeout 3000 $b/client/wrpn --addr "127.0.0.1:$port" sweep watch "$sweep" >"$out/watch.log" 2>&1
t1=$(date +%s.%N)
$b/client/wrpn --addr "127.0.0.1:$port" sweep show "$sweep" >"$out/sweep.txt" 2>&1
$b/client/wrpn --addr "127.0.0.1:$port" worker list >"$out/workers.txt" 2>&1
kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null
kill "$coord" 2>/dev/null; wait "$coord" 2>/dev/null
service_s=$(python3 -c "print($t1 - $t0)")
echo "service: $service_s s (submit to last result)"

step "the same trials one after another, PyTorch eager"
timeout 3000 python3 bench/pytorch_grid.py "$spec" --epochs "$epochs" --json "$out/eager.json"

python3 - "$out" "$service_s" "$epochs" "${#mps[@]}" <<'PY'
import json, os, sys
out, service, epochs, mps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
eager = json.load(open(os.path.join(out, "eager.json")))
res = {"gpu": open(os.path.join(out, "gpu.txt")).read().strip(), "epochs": epochs, "mps": mps,
       "trials": eager["trials"], "service_seconds": service, "eager_seconds": eager["seconds"],
       "speedup": eager["seconds"] / service, "goal": 4.0}
print(json.dumps(res, indent=2))
json.dump(res, open(os.path.join(out, "fractional-goal.json"), "w"), indent=2)
PY
step "done"
