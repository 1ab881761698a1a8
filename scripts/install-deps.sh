#!/usr/bin/env bash
# Installs every Debian package wrpn needs to build, test and run. Idempotent: when everything is
# already installed it only runs dpkg-query and exits within a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3 nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libcivetweb-dev libspdlog-dev libfmt-dev
  docker-compose docker.io debootstrap
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  libtorch-dev libgloo-dev
  libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
  dataset-fashion-mnist
  prometheus gnuplot-nox curl python3 procps util-linux
  # The Python client (client/python) and its tests; the web page's browser test; HTTPS on the
  # HTTP port (server/https_front.cc: OpenSSL, since Debian's civetweb cannot do TLS with
  # OpenSSL 3; the openssl tool makes the tests' certificates and deploy/compose/secrets/make-tls.sh's).
  python3-grpcio python3-protobuf python3-yaml python3-venv python3-pip
  chromium libssl-dev openssl
  # Slurm as the engine for workers and gangs (deploy/slurm, tests/slurm).
  slurm-wlm munge
)

# kubectl: Debian's kubernetes-client, unless a kubectl (e.g. the Google Cloud SDK's package,
# which owns the same path) is already there.
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
