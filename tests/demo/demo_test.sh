#!/usr/bin/env bash
# Runs scripts/demo.sh --no-build on examples/sweeps/ci-tiny.yaml and checks what a user sees:
# the grid with the paper comparison, the plot and CSV files, and no process left behind.
set -uo pipefail
src=$1
build=$2
state=$(mktemp -d /tmp/wrpn-demo-test.XXXXXX)
trap 'rm -rf "$state"' EXIT
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "dataset-fashion-mnist is not installed: skipping"; exit 0
fi
out=$("$src/scripts/demo.sh" --no-build --build "$build" --spec "$src/examples/sweeps/ci-tiny.yaml" \
      --state "$state/s" 2>&1)
rc=$?
echo "$out"
fail() { echo "FAIL: $*"; exit 1; }
((rc == 0)) || fail "demo.sh exited $rc"
grep -q "2/2 done" <<<"$out" || fail "the watch did not report both trials done"
grep -q "lenet5 1x" <<<"$out" || fail "no grid for lenet5 1x"
grep -q "Table 1" <<<"$out" || fail "the grid does not name the paper's table"
[[ -s "$state/s/pareto.png" ]] || fail "no plot written"
[[ $(head -c 4 "$state/s/pareto.png" | tail -c 3) == PNG ]] || fail "the plot is not a PNG"
[[ $(wc -l <"$state/s/grid.csv") -ge 3 ]] || fail "grid.csv has fewer than 2 cells"
if pgrep -f -- "$state/s" >/dev/null; then fail "processes of the demo are still running"; fi
echo "PASS"
