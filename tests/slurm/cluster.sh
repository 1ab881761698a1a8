#!/usr/bin/env bash
# A throwaway two-node Slurm cluster on this host, for the `slurm` tests (docs/deploy.md):
# munged with its own key and socket, slurmctld and two slurmd (n1, n2; Debian's build has
# multiple-slurmd) on free loopback ports, every file under DIR. Started by hand (no systemd),
# stopped by pid.
#   cluster.sh start DIR   brings it up, waits until both nodes are idle; exit 77 (skip) with a
#                          reason on stderr when the daemons are missing or cannot start
#   cluster.sh stop DIR    stops the daemons it started (by the pids in DIR/pids)
# Clients use it with SLURM_CONF=DIR/slurm.conf (written by start, also in DIR/env).
set -uo pipefail

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }

stop() {
  [[ -f "$dir/pids" ]] || return 0
  local pids; pids=$(tac "$dir/pids")
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$dir/pids"
}

skip() { echo "slurm cluster: $*; skipping the Slurm tests" >&2; stop; exit 77; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

if [[ "$cmd" == stop ]]; then stop; exit 0; fi
[[ "$cmd" == start ]] || { echo "cluster.sh: unknown command '$cmd'" >&2; exit 2; }

for b in munged mungekey slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null 2>&1 || [[ -x "/usr/sbin/$b" ]] ||
    skip "'$b' is not installed (scripts/install-deps.sh installs slurm-wlm and munge)"
done
export PATH="$PATH:/usr/sbin"
[[ $(id -u) -eq 0 ]] || skip "slurmd needs root to start job steps as their user (running as $(id -un))"

stop
rm -rf "$dir"
mkdir -p "$dir"/{munge,state,log,spool/n1,spool/n2}
dir=$(cd "$dir" && pwd)
chmod 0700 "$dir/munge"
mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
  skip "mungekey --create failed"
chmod 0400 "$dir/munge/munge.key"
mkdir -p "$dir/munge/run" && chmod 0755 "$dir/munge/run"
sock="$dir/munge/run/munge.socket"
munged --force --key-file="$dir/munge/munge.key" --socket="$sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" >/dev/null 2>&1 || skip "munged did not start (see $dir/log/munged.log)"
for _ in $(seq 50); do [[ -s "$dir/munge/munged.pid" ]] && break; sleep 0.05; done
cat "$dir/munge/munged.pid" >> "$dir/pids"

ctl_port=$(free_port); p1=$(free_port); p2=$(free_port)
while [[ $p1 == "$ctl_port" || $p2 == "$ctl_port" || $p1 == "$p2" ]]; do p2=$(free_port); p1=$(free_port); done
cat > "$dir/slurm.conf" <<CONF
ClusterName=wrpntest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
KillWait=20
OverTimeLimit=0
MessageTimeout=10
NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=localhost Port=$p1 CPUs=2 State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=localhost Port=$p2 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
echo "export SLURM_CONF=$dir/slurm.conf" > "$dir/env"
export SLURM_CONF="$dir/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
echo $! >> "$dir/pids"
for n in n1 n2; do
  slurmd -D -N "$n" -f "$SLURM_CONF" >"$dir/log/slurmd-$n.out" 2>&1 &
  echo $! >> "$dir/pids"
done
for _ in $(seq 150); do
  idle=$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle$')
  [[ "$idle" == 2 ]] && exit 0
  for p in $(cat "$dir/pids"); do
    kill -0 "$p" 2>/dev/null ||
      skip "a Slurm daemon (pid $p) exited at start: $(tail -n 3 "$dir"/log/*.out "$dir"/log/*.log 2>/dev/null | tr '\n' ' ' | cut -c1-600)"
  done
  sleep 0.1
done
skip "the two nodes did not become idle within 15 s: $(sinfo -N 2>&1 | tr '\n' ' ')"
