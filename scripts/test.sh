#!/usr/bin/env bash
# The project's test command (README.md; .ci/run calls exactly this): installs what is missing,
# configures, builds everything and runs every ctest suite. GPU-labelled tests skip cleanly
# without CUDA. Usage: scripts/test.sh [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${WRPN_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 2 "$@"
