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
#                       [--threads T (load generator threads, default 32)] [--huge-mib M (default 1024)]
# ("both" runs all three.) Every phase ends with fleet_load's COUNTS line and one of this
# script's (bench/report.sh: peak RSS, `wrpn grid` times). Exit status 1 when work was refused or
# lost (FAILED lines say why); a fleet served without loss but not within the latency goal is a
# result (sustained=no), not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/report.sh
build=build workers=5000 seconds=600 trials=100000 phase=both threads=32 huge_mib=1024
while (($#)); do
  case "$1" in
    --build) build=$2; shift ;;
    --workers) workers=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --trials) trials=$2; shift ;;
    --phase) phase=$2; shift ;;
    --threads) threads=$2; shift ;;
    --huge-mib) huge_mib=$2; shift ;;
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
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
# fleet_load PHASE ARGS...: runs it; its exit 1 (work refused or lost) fails this script too.
fleet_load() {
  local phase=$1 rc=0
  shift
  "$build/bench/fleet_load" --target "$target" --phase "$phase" "$@" | tee "$tmp/$phase.out" || rc=$?
  case $rc in
    0) ;;
    3) echo "scale.sh: the $phase phase did not sustain the load (fleet_load exit 3; nothing lost)" ;;
    *) bench_fail scale.sh "$phase" "fleet_load --phase $phase exited $rc" ;;
  esac
}
echo "scale.sh: $(nproc) cores, commit $(bench_commit), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $phase == fleet || $phase == both ]]; then
  start fleet
  fleet_load fleet --workers "$workers" --seconds "$seconds" --threads "$threads" --channels 64
  echo "fleet: coordinator $(mem)"
  bench_counts scale.sh fleet "workers=$workers seconds=$seconds peak_rss_mib=$(peak_mib)" \
    "$(grep -o 'sustained=[a-z]*' "$tmp/fleet.out")"
  stop
fi
if [[ $phase == huge || $phase == both ]]; then
  start huge
  fleet_load huge --huge-mib "$huge_mib"
  echo "huge: coordinator $(mem)"
  "$build/client/wrpn" --addr "$target" worker list >/dev/null ||
    bench_fail scale.sh huge "the coordinator stopped answering after the $huge_mib MiB request"
  echo "huge: coordinator still answering"
  bench_counts scale.sh huge "mib=$huge_mib answering=yes peak_rss_mib=$(peak_mib)"
  stop
fi
if [[ $phase == sweep || $phase == both ]]; then
  start sweep
  fleet_load sweep --trials "$trials" --workers 64 --slots 16 --threads 8 --channels 16
  id=$(sed -n 's/^sweep: id //p' "$tmp/sweep.out")
  times=()
  for args in "" "--paper" "-o json"; do
    s=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$build/client/wrpn" --addr "$target" grid "$id" $args >"$tmp/grid.out" ||
      bench_fail scale.sh sweep "wrpn grid $id $args failed"
    e=$(date +%s.%N)
    lines=$(wc -l <"$tmp/grid.out")
    [[ -s $tmp/grid.out ]] || bench_fail scale.sh sweep "wrpn grid $id $args printed nothing"
    t=$(printf '%.3f' "$(echo "$e - $s" | bc)")
    times+=("$t")
    echo "sweep: wrpn grid $id $args: $t s ($lines lines)"
  done
  echo "sweep: coordinator $(mem)  db $(du -h "$tmp/wrpn.db" | cut -f1)"
  bench_counts scale.sh sweep "trials=$trials grid_s=${times[0]} grid_paper_s=${times[1]}" \
    "grid_json_s=${times[2]} peak_rss_mib=$(peak_mib) db_mib=$(du -m "$tmp/wrpn.db" | cut -f1)"
  stop
fi
