#!/usr/bin/env bash
# The project's test command (README.md; .ci/run calls exactly this): installs what is missing,
# configures, builds everything and runs every ctest suite. GPU-labelled tests skip cleanly
# without CUDA. Usage: scripts/test.sh [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The compose test's own Docker engine keeps its data root (base image, layers, BuildKit's ccache)
# in a cache folder that outlives the clone, as ccache's does; a fresh machine starts it cold.
export WRPN_CONTAINER_DATA_ROOT=${WRPN_CONTAINER_DATA_ROOT:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/wrpn/container-engine}
build=${WRPN_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 2 "$@"

# libFuzzer smoke (tests/fuzz, docs/reliability.md): the sweep-spec parser and the dataset
# readers under ASan + UBSan, built with clang in their own folder (no LibTorch, no service);
# each target replays its corpus and runs a few thousand fresh inputs (WRPN_FUZZ_RUNS).
if command -v clang++ >/dev/null 2>&1; then
  fuzz=${WRPN_FUZZ_BUILD_DIR:-build-fuzz}
  CC=clang CXX=clang++ cmake -S . -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWRPN_FUZZ=ON -DWRPN_WITH_TORCH=OFF -DWRPN_BUILD_SERVICE=OFF -DWRPN_BUILD_TESTS=OFF \
    -DWRPN_BUILD_BENCH=OFF >/dev/null
  cmake --build "$fuzz" -j "$(nproc)"
  ctest --test-dir "$fuzz" --output-on-failure -j 2 -L fuzz
fi
