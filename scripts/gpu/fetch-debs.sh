#!/bin/bash
# On a CPU machine with Debian's registry: download the Debian packages the GPU machine lacks for
# the trainer build (absl, nlohmann-json, yaml-cpp, CLI11, GoogleTest, libpng, libjpeg-turbo),
# into one folder a device run carries. Based on ../shared/gpu/fetch-debs.sh, trimmed to what
# WRPN_BUILD_SERVICE=OFF needs. Usage: scripts/gpu/fetch-debs.sh [DIR] (default .gpu-debs)
# WRPN_GPU_SERVICE=1 adds what the service build needs (gRPC, protobuf, SQLite, civetweb) for
# scripts/gpu/fractional-goal.sh.
set -euo pipefail
dir=${1:-.gpu-debs}
mkdir -p "$dir"
cd "$dir"
apt-get download \
  libabsl-dev libabsl20220623 nlohmann-json3-dev libyaml-cpp-dev libyaml-cpp0.7 libcli11-dev \
  libgtest-dev libgmock-dev libpng-dev libpng16-16 zlib1g-dev libturbojpeg0-dev libturbojpeg0 \
  libjpeg62-turbo-dev libjpeg62-turbo 2>&1 | tail -n 2
if [ "${WRPN_GPU_SERVICE:-0}" = 1 ]; then
  apt-get download \
    libgrpc++-dev libgrpc++1.51 libgrpc29 libgrpc-dev protobuf-compiler-grpc \
    libprotobuf-dev libprotobuf32 libprotoc32 protobuf-compiler libre2-9 libre2-dev libc-ares2 \
    libc-ares-dev libupb-dev libssl-dev libssl3 libsqlite3-dev libsqlite3-0 libcivetweb-dev \
    libcivetweb1 2>&1 | tail -n 2
fi
ls | wc -l
