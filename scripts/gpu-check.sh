#!/usr/bin/env bash
# The whole GPU check in one go, on the GPU machine (see ../shared/gpu/README.md): unpack the
# carried Debian packages into a private prefix, configure the trainer against the machine's
# LibTorch (CUDA) and NCCL, build with all cores, run the `gpu` tests and the CPU trainer tests,
# run the training benchmark next to the PyTorch eager reference, and write logs and
# results.json to OUT_DIR. Budget: under 8 minutes.
# Usage: scripts/gpu-check.sh OUT_DIR [DEBS_DIR]   (DEBS_DIR from scripts/gpu/fetch-debs.sh)
# The fractional-GPU goal of issue 19 (the service on one GPU) is scripts/gpu/fractional-goal.sh.
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [DEBS_DIR]}
debs=${2:-.gpu-debs}
cd "$(dirname "$0")/.."
mkdir -p "$out"
start=$SECONDS
exec > >(tee -a "$out/gpu-check.log") 2>&1
step() { echo "== [$((SECONDS - start)) s] $*"; }

step "unpacking $(ls "$debs"/*.deb | wc -l) packages"
# shellcheck source=gpu/unpack-debs.sh
source scripts/gpu/unpack-debs.sh "$debs" /tmp/sysroot
export PATH=/opt/torch/.venv/bin:/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

configure() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWRPN_BUILD_SERVICE=OFF \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX;$GPU_SYSROOT/usr" \
    -DWRPN_NCCL_INCLUDE_DIR="$NCCL_INCLUDE_DIR" "$@"
}
targets=(wrpn-train trainer_tests trainer_gpu_tests ddp_rank train_bench common_network_spec_test
         common_trial_config_test)
step "configure"
configure >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
grep -E "wrpn:|Torch" "$out/configure.log"
step "build (-j$(nproc))"
if ! ninja -C build-gpu -j "$(nproc)" "${targets[@]}" >"$out/build.log" 2>&1; then
  grep -E "error|FAILED" -A3 "$out/build.log" | head -60
  step "build failed; retrying without our CUDA kernels"
  configure -DWRPN_CUDA_KERNELS=OFF >>"$out/configure.log" 2>&1
  ninja -C build-gpu -j "$(nproc)" "${targets[@]}" >>"$out/build.log" 2>&1 ||
    { grep -E "error|FAILED" -A3 "$out/build.log" | head -80; exit 1; }
  echo "cuda_kernels=off" >"$out/fallback.txt"
fi

step "gpu tests"
export TORCH_SHOW_CPP_STACKTRACES=1
timeout 240 ctest --test-dir build-gpu -L gpu --output-on-failure >"$out/gpu-tests.log" 2>&1
echo "gpu tests rc=$?"; grep -E "Failure|crash|Passed|Failed|SEGFAULT" -A8 "$out/gpu-tests.log" | head -60
timeout 60 build-gpu/tests/worker/trainer/trainer_gpu_tests --gtest_filter='*Quantizer*' 2>&1 | grep -E "fused|OK|FAILED"

step "C++ benchmark (wrpn train_bench)"
b=build-gpu/bench/train_bench
timeout 150 $b --device cuda --amp --channels-last --network resnet34 --batch 128 --steps 20 --warmup 5 \
  --json "$out/cpp_resnet34.json"
timeout 90 $b --device cuda --amp --channels-last --network resnet20 --batch 256 --steps 30 --warmup 10 \
  --json "$out/cpp_resnet20.json"
timeout 90 $b --device cuda --channels-last --network resnet20 --batch 256 --steps 30 --warmup 10 \
  --json "$out/cpp_resnet20_fp32.json"

step "PyTorch eager reference"
timeout 200 python3 bench/pytorch_bench.py --steps 20 --warmup 5 --json "$out/pytorch.json"

step "CPU trainer tests on this LibTorch"
timeout 150 build-gpu/tests/worker/trainer/trainer_tests >"$out/cpu-tests.log" 2>&1
echo "cpu tests rc=$?"; grep -E "FAILED|crash|^\[  PASSED" -A12 "$out/cpu-tests.log" | head -40

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(n):
    p = os.path.join(out, n)
    return json.load(open(p)) if os.path.exists(p) else None
res = {"gpu": open(os.path.join(out, "gpu.txt")).read().strip(), "cpp": {}, "pytorch": {}}
for name in ("cpp_resnet34.json", "cpp_resnet20.json", "cpp_resnet20_fp32.json"):
    j = load(name)
    if j:
        for r in j["results"]:
            res["cpp"][f'{j["network"]} {r["config"]}' + (" fp32" if "fp32" in name else "")] = r
py = load("pytorch.json")
if py:
    for r in py["results"]:
        res["pytorch"][f'{r["network"]} {r["config"]}'] = r["images_per_sec"]
goals = {"resnet34 1x 32/32": 7500, "resnet34 2x 32/32": 3900, "resnet34 2x W2A4": 3800, "resnet20 2x W2A4": 25000}
print("\n%-20s %12s %12s %8s %8s %6s" % ("config", "wrpn img/s", "torch img/s", "ratio", "goal", "MFU"))
for k, r in res["cpp"].items():
    p = res["pytorch"].get(k)
    print("%-20s %12.1f %12s %8s %8s %5.1f%%" % (k, r["images_per_sec"], f"{p:.1f}" if p else "-",
          f"{r['images_per_sec'] / p:.2f}" if p else "-", goals.get(k, "-"), 100 * r["mfu"]))
for n in ("cpp_resnet34.json", "cpp_resnet20.json"):
    j = load(n)
    if j: print(f'{j["network"]}: quantization overhead (2x W2A4 / 2x 32/32 step time) {j["overhead_ratio"]:.3f}')
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
PY
step "done"
