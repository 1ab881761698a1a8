#!/bin/bash
# On a CPU machine with Debian's registry: download the Debian packages the GPU machine lacks for
# the trainer build (absl, nlohmann-json, yaml-cpp, CLI11, GoogleTest, libpng, libjpeg-turbo),
# into one folder a device run carries. Based on ../shared/gpu/fetch-debs.sh, trimmed to what
# WRPN_BUILD_SERVICE=OFF needs. Usage: scripts/gpu/fetch-debs.sh [DIR] (default .gpu-debs)
set -euo pipefail
dir=${1:-.gpu-debs}
mkdir -p "$dir"
cd "$dir"
apt-get download \
  libabsl-dev libabsl20220623 nlohmann-json3-dev libyaml-cpp-dev libyaml-cpp0.7 libcli11-dev \
  libgtest-dev libgmock-dev libpng-dev libpng16-16 zlib1g-dev libturbojpeg0-dev libturbojpeg0 \
  libjpeg62-turbo-dev libjpeg62-turbo 2>&1 | tail -n 2
ls | wc -l
