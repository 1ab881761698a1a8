#!/usr/bin/env bash
# Scale of the coordinator on this machine (docs/reliability.md, "Scale"): starts a fresh
# wrpn-coordinator (SQLite in a temporary folder) per phase and drives it over real gRPC on
# loopback with bench/fleet_load:
#   fleet: N simulated workers heartbeating every 10 s and streaming 10 metric points/s each in
#          5 s batches, for S seconds: heartbeat p99, points sent/stored, coordinator peak RSS;
#   sweep: a 100,000-trial sweep submitted, leased and completed by simulated workers (fake
#          results), then `wrpn grid` on it timed (text, --paper and JSON), coordinator peak RSS.
#   huge:  one 1 GiB ReportMetrics request: refused by its size, coordinator peak RSS.
# Usage: bench/scale.sh [--build DIR] [--workers N] [--seconds S] [--trials N] [--phase fleet|sweep|huge|both]
#                       [--threads T (load generator threads, default 32)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build workers=5000 seconds=600 trials=100000 phase=both threads=32
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --workers) workers=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --trials) trials=$2; shift ;;
    --phase) phase=$2; shift ;;
    --threads) threads=$2; shift ;;
    *) echo "scale.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for b in server/wrpn-coordinator client/wrpn bench/fleet_load; do
  [[ -x "$build/$b" ]] || { echo "scale.sh: $build/$b is missing (build the fleet_load, wrpn-coordinator and wrpn targets)" >&2; exit 2; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d)
pid=
stop() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap 'stop; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() {
  local p; p=$(port)
  rm -f "$tmp/wrpn.db"*
  "$build/server/wrpn-coordinator" --listen "127.0.0.1:$p" --http-listen "" --db "$tmp/wrpn.db" \
    --lease-ttl 30 >"$tmp/coordinator-$1.log" 2>&1 &
  pid=$!
  target=127.0.0.1:$p
  for _ in $(seq 50); do "$build/client/wrpn" --addr "$target" worker list >/dev/null 2>&1 && return; sleep 0.1; done
  echo "scale.sh: the coordinator did not start:" >&2; cat "$tmp/coordinator-$1.log" >&2; exit 1
}
mem() { awk '/VmHWM|VmRSS/ {printf "%s %.0f MiB  ", $1, $2/1024} END {print ""}' "/proc/$pid/status"; }
echo "scale.sh: $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ $phase == fleet || $phase == both ]]; then
  start fleet
  "$build/bench/fleet_load" --target "$target" --phase fleet --workers "$workers" --seconds "$seconds" \
    --threads "$threads" --channels 64 || echo "scale.sh: fleet phase did not sustain the load (exit $?)"
  echo "fleet: coordinator $(mem)"
  stop
fi
if [[ $phase == huge || $phase == both ]]; then
  start huge
  "$build/bench/fleet_load" --target "$target" --phase huge --huge-mib 1024 || echo "scale.sh: a 1 GiB request was not refused by its size"
  echo "huge: coordinator $(mem)"
  "$build/client/wrpn" --addr "$target" worker list >/dev/null && echo "huge: coordinator still answering"
  stop
fi
if [[ $phase == sweep || $phase == both ]]; then
  start sweep
  out=$("$build/bench/fleet_load" --target "$target" --phase sweep --trials "$trials" --workers 64 \
    --slots 16 --threads 8 --channels 16) || { echo "$out"; exit 1; }
  echo "$out"
  id=$(sed -n 's/^sweep: id //p' <<<"$out")
  for args in "" "--paper" "-o json"; do
    s=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$build/client/wrpn" --addr "$target" grid "$id" $args >"$tmp/grid.out"
    e=$(date +%s.%N)
    printf 'sweep: wrpn grid %s %s: %.3f s (%s lines)\n' "$id" "$args" "$(echo "$e - $s" | bc)" "$(wc -l <"$tmp/grid.out")"
  done
  echo "sweep: coordinator $(mem)  db $(du -h "$tmp/wrpn.db" | cut -f1)"
  stop
fi
