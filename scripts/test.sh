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
# ccache: results keyed by paths relative to the source root (another clone, or the images' /src,
# hits them), the trainer's precompiled header cacheable, and every result also written to
# BUILD/ccache-share, which the compose test hands to the image builds as a read-only seed
# (docs/deploy.md, "Images and Compose in CI").
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
export CCACHE_REMOTE_STORAGE=${CCACHE_REMOTE_STORAGE:-file:$(realpath -m "$build")/ccache-share}
export CCACHE_RESHARE=${CCACHE_RESHARE:-true}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# ccache hashes the locale variables: build with one locale, the one the images' builds use.
env -u LC_ALL -u LC_CTYPE -u LC_MESSAGES LANG=C.UTF-8 cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j 2 "$@"

# libFuzzer smoke (tests/fuzz, docs/reliability.md): the sweep-spec parser and the dataset
# readers under ASan + UBSan, built with clang in their own folder (no LibTorch, no service);
# each target replays its corpus and runs a few thousand fresh inputs (WRPN_FUZZ_RUNS).
if command -v clang++ >/dev/null 2>&1; then
  fuzz=${WRPN_FUZZ_BUILD_DIR:-build-fuzz}
  CC=clang CXX=clang++ cmake -S . -B "$fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWRPN_FUZZ=ON -DWRPN_WITH_TORCH=OFF -DWRPN_BUILD_SERVICE=OFF -DWRPN_BUILD_TESTS=OFF \
    -DWRPN_BUILD_BENCH=OFF >/dev/null
  CCACHE_REMOTE_STORAGE= cmake --build "$fuzz" -j "$(nproc)"
  ctest --test-dir "$fuzz" --output-on-failure -j 2 -L fuzz
fi
