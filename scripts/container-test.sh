#!/usr/bin/env bash
# The images and the Compose stack for real (ctest `compose.ContainerStack`, docs/deploy.md):
#   1. a Docker engine: the one DOCKER_HOST (or /var/run/docker.sock) names, else our own dockerd
#      with its socket, data root and exec root under BUILD_DIR/container-test, stopped by its pid
#      at the end (its mounts, bridge and iptables rules removed);
#   2. a bookworm base: debian:12.11(-slim) when it can be pulled, else one made with debootstrap
#      --variant=minbase from apt's mirror and `docker import`ed, once, tagged by a content key;
#   3. the coordinator, CPU worker and Debian-Prometheus images from docker/ (BuildKit);
#   4. the images checked: non-root, stripped, the coordinator refusing a non-loopback listen
#      without tokens;
#   5. deploy/compose as a user runs it (only variables set): secrets from make-tokens.sh, `up -d`,
#      healthchecks, examples/sweeps/ci-tiny.yaml submitted with the host's `wrpn` CLI, the
#      coordinator container killed while a trial runs and brought back with `up -d`, the sweep
#      completed with every trial once and its metric rows intact, wrpn_trials read from the
#      Prometheus container's HTTP API, then `down -v` leaving nothing of the project.
# Any failure prints the containers' logs. Exit status 77 (ctest: skipped) when no engine answers
# and none can be started here.
#
# Usage: scripts/container-test.sh [--images-only] [BUILD_DIR [WRPN_CLI]]
# Environment: BUILD_JOBS (compile jobs inside the image builds, default 2), WRPN_DEBIAN_IMAGE /
# WRPN_DEBIAN_SLIM_IMAGE (bases to use instead of the above), WRPN_CONTAINER_TEST_KEEP=1 (leave
# our dockerd's data root, i.e. base image and build cache, in place: the default),
# WRPN_CONTAINER_DATA_ROOT (our dockerd's data root; default BUILD_DIR/container-test/engine/data;
# scripts/test.sh points it at a cache folder kept across clones, like ccache's).
set -euo pipefail

images_only=0
if [[ ${1:-} == --images-only ]]; then images_only=1; shift; fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$src/build}")
cli=$(realpath -m "${2:-$build/client/wrpn}")
state=$build/container-test
mkdir -p "$state"
SKIP=77
t0=$SECONDS
timings=$state/timings.txt
: >"$timings"

log() { printf '[container-test %4ds] %s\n' $((SECONDS - t0)) "$*"; }
skip() { log "SKIP: $*"; exit $SKIP; }
die() { log "FAIL: $*"; exit 1; }
phase_start=$SECONDS
phase() { # phase NAME: records the time since the previous phase under NAME
  printf '%-28s %5ds\n' "$1" $((SECONDS - phase_start)) | tee -a "$timings"
  phase_start=$SECONDS
}

# ---- tools ----------------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[[ -x /usr/bin/docker-compose ]] || command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  ((EUID == 0)) || skip "missing ${need[*]} and not root to install them (scripts/install-deps.sh)"
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker CLI (20.10) has BuildKit built in; a newer static CLI earlier on PATH may lack
# the buildx plugin that its `docker build` needs.
docker=/usr/bin/docker
[[ -x $docker ]] || docker=$(command -v docker)
dk() { "$docker" "$@"; }
((images_only)) || [[ -x $cli ]] || die "the wrpn CLI is not built at $cli (cmake --build BUILD_DIR --target wrpn)"

# ---- engine ---------------------------------------------------------------------------------------
engine_pid=""
data_root=${WRPN_CONTAINER_DATA_ROOT:-$state/engine/data}
run_dir=""
bridge=""
project=""
project_down=1
compose=()

print_logs() {
  [[ -n $project ]] || return 0
  log "containers of $project:"
  "${compose[@]}" ps -a || true
  for svc in coordinator worker-cpu prometheus; do
    echo "----- logs: $svc -----"
    "${compose[@]}" logs --no-color --tail=200 "$svc" 2>&1 || true
  done
}

stop_engine() {
  [[ -n $engine_pid ]] || return 0
  log "stopping our dockerd (pid $engine_pid)"
  # A build step interrupted mid-way (BuildKit runs it with runc, outside containerd) outlives
  # dockerd: end every process whose root is inside our data root while the mounts still say so.
  for p in /proc/[0-9]*; do
    case $(readlink "$p/root" 2>/dev/null) in "$data_root/"*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
  done
  kill -TERM "$engine_pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$engine_pid" 2>/dev/null || true
  wait "$engine_pid" 2>/dev/null || true
  # Mounts left by an engine killed mid-way (overlay layers, netns, shm), deepest first.
  awk -v a="$state/engine/" -v b="$run_dir/" -v c="$data_root/" \
    'index($2, a) == 1 || index($2, b) == 1 || index($2, c) == 1 { print $2 }' \
    /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [[ -n $bridge ]]; then
    ip link del "$bridge" 2>/dev/null || true
    for table in filter nat; do
      iptables -t "$table" -S 2>/dev/null | grep -- "$bridge" | sed 's/^-A /-D /' |
        while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    done
  fi
  [[ $run_dir == /tmp/wrpn-ct.* ]] && rm -rf "$run_dir"
  engine_pid=""
}

cleanup() {
  local rc=$?
  set +e
  if ((rc != 0 && rc != SKIP)); then print_logs; fi
  if [[ -n $project && $project_down -eq 0 ]]; then
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1
  fi
  [[ -n ${build_pid:-} ]] && kill -TERM "$build_pid" 2>/dev/null
  [[ -n ${cid_refuse:-} ]] && dk rm -f "$cid_refuse" >/dev/null 2>&1
  stop_engine
  log "timings (also in $timings):"
  cat "$timings"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${DOCKER_HOST:-} && ! -S /var/run/docker.sock ]] || ! dk version >/dev/null 2>&1; then
  ((EUID == 0)) || skip "no Docker engine answers and starting one needs root"
  command -v dockerd >/dev/null || skip "dockerd is not installed"
  mkdir -p "$state/engine" "$data_root"
  # Unix socket paths are limited to 108 bytes: a deep build folder gets its sockets under /tmp.
  if ((${#state} <= 60)); then run_dir=$state/engine/run; mkdir -p "$run_dir"
  else run_dir=$(mktemp -d /tmp/wrpn-ct.XXXXXX); fi
  # Our own bridge and address pool, away from another engine's docker0 and 172.16/12.
  n=$((100 + $(cksum <<<"$state" | cut -d' ' -f1) % 100))
  while ip route | grep -q "^10\.$n\."; do n=$((n + 1)); done
  bridge=wrpn-ct$n
  ip link add name "$bridge" type bridge 2>/dev/null || true
  ip addr replace "10.$n.255.1/24" dev "$bridge"
  ip link set "$bridge" up
  log "starting dockerd: data root $data_root, exec root $run_dir/exec, bridge $bridge"
  dockerd --host "unix://$run_dir/docker.sock" --data-root "$data_root" \
    --exec-root "$run_dir/exec" --pidfile "$run_dir/dockerd.pid" --bridge "$bridge" \
    --default-address-pool "base=10.$n.0.0/17,size=24" >"$state/engine/dockerd.log" 2>&1 &
  engine_pid=$!
  export DOCKER_HOST=unix://$run_dir/docker.sock
  for _ in $(seq 120); do
    dk version >/dev/null 2>&1 && break
    kill -0 "$engine_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! dk version >/dev/null 2>&1; then
    reason=$(grep -Ei 'level=(fatal|error)|failed' "$state/engine/dockerd.log" | tail -n 3)
    skip "the Docker engine did not start here: ${reason:-see $state/engine/dockerd.log}"
  fi
fi
log "engine: $(dk version -f 'server {{.Server.Version}}, API {{.Server.APIVersion}}') at ${DOCKER_HOST:-/var/run/docker.sock}"
phase engine

# ---- base image -----------------------------------------------------------------------------------
debian_args=()
if [[ -n ${WRPN_DEBIAN_IMAGE:-} ]]; then
  base=$WRPN_DEBIAN_IMAGE
  slim=${WRPN_DEBIAN_SLIM_IMAGE:-$base}
  debian_args=(--build-arg "DEBIAN_IMAGE=$base" --build-arg "DEBIAN_SLIM_IMAGE=$slim")
elif timeout 30 "$docker" pull -q debian:12.11 >/dev/null 2>&1 &&
     timeout 30 "$docker" pull -q debian:12.11-slim >/dev/null 2>&1; then
  base=debian:12.11 slim=debian:12.11-slim   # the Dockerfiles' defaults
else
  # apt's own mirror and sources, so that the images get the packages the host resolves.
  sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit } /^deb / && $3 !~ /security/ { print $2; exit }' <<<"$sources")
  mirror=${mirror:-http://deb.debian.org/debian}
  recipe="minbase bookworm slim-v1 $mirror $(dpkg-query -W -f='${Version}' debootstrap)"
  key=$(printf '%s\n%s\n%s\n' "$recipe" "$sources" "$(sed -n '/slimify() {/,/^  }/p' "$0")" | sha256sum | cut -c1-16)
  base=wrpn-local/debian:bookworm-$key
  slim=$base
  debian_args=(--build-arg "DEBIAN_IMAGE=$base" --build-arg "DEBIAN_SLIM_IMAGE=$slim")
  slimify() { # what debian:*-slim leaves out (docs, man pages, locales), for this and later packages
    local r=$1
    mkdir -p "$r/etc/dpkg/dpkg.cfg.d" "$r/etc/apt/apt.conf.d"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/linda/*' \
      'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
      >"$r/etc/dpkg/dpkg.cfg.d/docker-slim"
    printf '%s\n' \
      'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$r/etc/apt/apt.conf.d/docker-clean"
    echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$r"/usr/share/{man,groff,info,lintian,linda}/*
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/log/*.log "$r"/var/log/apt/*
  }
  if dk image inspect "$base" >/dev/null 2>&1; then
    log "base image $base (cached)"
  else
    ((EUID == 0)) || skip "debian:12.11 cannot be pulled and debootstrap needs root"
    rootfs=$state/base-rootfs
    rm -rf "$rootfs"
    log "debian:12.11 cannot be pulled: debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
      { tail -n 20 "$state/debootstrap.log"; die "debootstrap failed"; }
    rm -f "$rootfs/etc/apt/sources.list"
    cp /etc/apt/sources.list "$rootfs/etc/apt/" 2>/dev/null || true
    cp /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
    slimify "$rootfs"
    tar --numeric-owner -C "$rootfs" -c . |
      dk import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm ($recipe)" - "$base" >/dev/null
    rm -rf "$rootfs"
    log "base image $base: $(dk image inspect -f '{{.Size}}' "$base" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
  fi
fi
phase base-image

# ---- images ---------------------------------------------------------------------------------------
registry=wrpn-ct
version=test
coord_image=$registry/wrpn-coordinator:$version
worker_image=$registry/wrpn-worker:$version-cpu
prom_image=$registry/prometheus-debian:2.42
build_image() { # build_image NAME LOG docker-build-args...
  local name=$1 out=$state/build-$2.log; shift 2
  local start=$SECONDS
  # In the background so that a signal (ctest's timeout, Ctrl-C) reaches the trap at once.
  DOCKER_BUILDKIT=1 dk build --progress=plain "${debian_args[@]}" \
    --build-arg "BUILD_JOBS=${BUILD_JOBS:-2}" -t "$name" "$@" >"$out" 2>&1 &
  build_pid=$!
  local rc=0
  wait "$build_pid" || rc=$?
  build_pid=""
  if ((rc != 0)); then
    tail -n 60 "$out"
    die "docker build of $name failed (whole log: $out)"
  fi
  log "built $name in $((SECONDS - start)) s: $(dk image inspect -f '{{.Size}}' "$name" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}
# The host build's compiler cache as a read-only seed for the images' compile steps: scripts/test.sh
# has ccache share every result of the host build in BUILD_DIR/ccache-share (a ccache "file:"
# storage, paths relative to the source root), so the images, built with the host's build type and
# the same packages, compile only what the host did not. Without a share the images build as a
# user's would.
seed_args=()
share=$build/ccache-share
host_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [[ -d $share ]] && [[ -n $host_type ]] && [[ -n $(ls -A "$share" 2>/dev/null) ]]; then
  seed_image=$registry/ccache-seed:$version
  printf 'FROM scratch\nCOPY . /\n' |
    DOCKER_BUILDKIT=1 dk build -q -t "$seed_image" -f - "$share" >"$state/build-ccache-seed.log" 2>&1 ||
    { tail -n 20 "$state/build-ccache-seed.log"; die "the ccache seed image failed (log: $state/build-ccache-seed.log)"; }
  seed_args=(--build-arg "CCACHE_SEED=$seed_image" --build-arg "BUILD_TYPE=$host_type")
  log "ccache seed from $share ($(du -sh "$share" | cut -f1)), build type $host_type"
fi
phase ccache-seed
build_image "$coord_image" coordinator "${seed_args[@]}" -f "$src/docker/Dockerfile.coordinator" "$src"
phase build-coordinator
build_image "$worker_image" worker-cpu "${seed_args[@]}" -f "$src/docker/Dockerfile.worker" --target worker-cpu "$src"
phase build-worker-cpu
build_image "$prom_image" prometheus -f "$src/docker/Dockerfile.prometheus" "$src/docker"
phase build-prometheus
if ((images_only)); then exit 0; fi

# ---- what the images promise ----------------------------------------------------------------------
check_dir=$state/image-check
rm -rf "$check_dir"; mkdir -p "$check_dir"
check_image() { # check_image IMAGE BINARY...: a numeric non-root USER, stripped binaries
  local image=$1 user cid b; shift
  user=$(dk image inspect -f '{{.Config.User}}' "$image")
  [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] || die "$image runs as '${user:-root}', not a numeric non-root user"
  cid=$(dk create "$image")
  for b in "$@"; do
    dk cp "$cid:/usr/local/bin/$b" "$check_dir/$b" >/dev/null
    if readelf -S "$check_dir/$b" | grep -q '\.symtab'; then dk rm "$cid" >/dev/null; die "$image: $b is not stripped"; fi
  done
  dk rm "$cid" >/dev/null
  log "$image: user $user, $* stripped"
}
check_image "$coord_image" wrpn-coordinator wrpn
check_image "$worker_image" wrpn-worker wrpn-train
cid_refuse=$(dk create "$coord_image" --listen=0.0.0.0:7070 --http-listen=0.0.0.0:8080 --db=/tmp/refuse.db)
dk start "$cid_refuse" >/dev/null
refused=$(timeout 30 "$docker" wait "$cid_refuse" || echo timeout)
refuse_log=$(dk logs "$cid_refuse" 2>&1)
dk rm -f "$cid_refuse" >/dev/null; cid_refuse=""
[[ $refused != 0 && $refused != timeout ]] ||
  die "the coordinator image did not refuse a non-loopback listen without tokens (exit $refused): $refuse_log"
grep -qi 'token' <<<"$refuse_log" || die "the refusal does not say why: $refuse_log"
log "coordinator without tokens on 0.0.0.0: exit $refused, '$(tail -n 1 <<<"$refuse_log")'"
phase image-checks

# ---- the Compose stack ----------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
project=wrpnct$$$(date +%s)
work=$state/$project
mkdir -p "$work"
"$src/deploy/compose/secrets/make-tokens.sh" "$work/secrets" >/dev/null
dataset=/usr/share/datasets/fashion-mnist
[[ -e $dataset/train-images-idx3-ubyte.gz ]] || die "dataset-fashion-mnist is not installed ($dataset)"
# The documented shared folder (WRPN_SHARED_DIR): datasets and checkpoints, owned by the image's user.
mkdir -p "$work/shared/datasets/fashion-mnist" "$work/shared/checkpoints"
cp "$dataset"/*.gz "$work/shared/datasets/fashion-mnist/"
uid=$(dk image inspect -f '{{.Config.User}}' "$worker_image"); uid=${uid%%:*}
chown -R "$uid:$uid" "$work/shared" 2>/dev/null || chmod -R a+rwX "$work/shared"
grpc_port=$(free_port) http_port=$(free_port) prom_port=$(free_port) grafana_port=$(free_port)
export WRPN_REGISTRY=$registry WRPN_VERSION=$version WRPN_PROMETHEUS_IMAGE=$prom_image \
  WRPN_TOKENS_FILE=$work/secrets/tokens WRPN_WORKER_TOKEN_FILE=$work/secrets/worker-token \
  GRAFANA_ADMIN_PASSWORD_FILE=$work/secrets/grafana-admin-password WRPN_SHARED_DIR=$work/shared \
  WRPN_GRPC_PUBLISH=127.0.0.1:$grpc_port WRPN_HTTP_PUBLISH=127.0.0.1:$http_port \
  PROMETHEUS_PUBLISH=127.0.0.1:$prom_port GRAFANA_PUBLISH=127.0.0.1:$grafana_port \
  WRPN_LEASE_TTL_SECONDS=15 WRPN_WORKER_SHM_SIZE=512mb
# A container cannot raise RLIMIT_MEMLOCK above the engine's hard limit without CAP_SYS_RESOURCE.
memlock=$(ulimit -Hl)
[[ $memlock == unlimited ]] || export WRPN_WORKER_MEMLOCK=$((memlock * 1024))
compose=(docker-compose -p "$project" -f "$src/deploy/compose/docker-compose.yml" --profile cpu)
"${compose[@]}" config -q || die "docker-compose config rejects the file with the test's variables"
# Grafana is upstream-only (not packaged in Debian): the services this machine can run.
services=(coordinator worker-cpu prometheus)
project_down=0
log "docker-compose -p $project --profile cpu up -d ${services[*]}"
"${compose[@]}" up -d --no-build "${services[@]}"
cid_of() { "${compose[@]}" ps -q "$1"; }
wait_healthy() { # wait_healthy SERVICE SECONDS
  local c h
  for _ in $(seq $(($2 * 2))); do
    c=$(cid_of "$1")
    h=$(dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || true)
    [[ $h == healthy ]] && return 0
    sleep 0.5
  done
  die "$1 did not become healthy within $2 s (last: ${h:-no container})"
}
wait_healthy coordinator 90
phase compose-up

for svc in coordinator worker-cpu prometheus; do
  c=$(cid_of "$svc")
  [[ $(dk inspect -f '{{.State.Status}}' "$c") == running ]] || die "$svc is not running"
  # The user of the container's first process, as the kernel sees it.
  pid1_uid=$(dk exec "$c" cat /proc/1/status | awk '/^Uid:/ { print $2 }')
  [[ $pid1_uid =~ ^[0-9]+$ && $pid1_uid -ne 0 ]] || die "$svc runs as uid '$pid1_uid'"
  log "$svc: pid 1 runs as uid $pid1_uid"
done

export WRPN_ADDR=127.0.0.1:$grpc_port WRPN_TOKEN
WRPN_TOKEN=$(cat "$work/secrets/admin-token")
wrpn() { "$cli" --connect-timeout 10 "$@"; }
for _ in $(seq 60); do
  [[ $(wrpn -o json worker list 2>/dev/null | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))' 2>/dev/null) -ge 1 ]] 2>/dev/null && break
  sleep 1
done
id=$(wrpn -o json sweep submit "$src/examples/sweeps/ci-tiny.yaml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["sweep_id"])')
log "submitted examples/sweeps/ci-tiny.yaml as sweep $id through 127.0.0.1:$grpc_port"
trial_states() { wrpn -o json trial list "$id" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("trials", rows) if isinstance(rows, dict) else rows
print(" ".join(str(r.get("state", "?")).lower() for r in rows))'; }
killed=""
for _ in $(seq 600); do
  s=$(trial_states 2>/dev/null || true)
  if [[ $s == *running* ]]; then killed=$s; break; fi
  [[ -n $s && $s != *queued* ]] && break
  sleep 0.2
done
[[ -n $killed ]] || die "no trial was seen running (states: ${s:-none})"
phase sweep-to-running
log "trials: $killed; docker kill the coordinator"
dk kill "$(cid_of coordinator)" >/dev/null
sleep 1
"${compose[@]}" up -d --no-build "${services[@]}"
wait_healthy coordinator 90
log "coordinator back; watching sweep $id"
phase coordinator-restart
timeout 600 "$cli" sweep watch "$id" >"$work/watch.log" 2>&1 || { cat "$work/watch.log"; die "sweep $id did not succeed"; }
tail -n 3 "$work/watch.log"
phase sweep-complete

# Every trial once, succeeded, with its epochs' metric rows.
wrpn -o json trial list "$id" >"$work/trials.json"
python3 - "$work/trials.json" <<'EOF' || die "the trials after the restart are not what was submitted"
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows.get("trials", rows) if isinstance(rows, dict) else rows
assert len(rows) == 2, f"{len(rows)} trials, expected the spec's 2"
ids = [r["id"] for r in rows]
assert len(set(ids)) == len(ids), f"a trial listed twice: {ids}"
for r in rows:
    assert str(r.get("state")).lower().endswith("succeeded"), r
print("trials:", ", ".join(f'{i}={r.get("state")}' for i, r in zip(ids, rows)))
EOF
for t in $(python3 -c 'import json, sys
rows = json.load(open(sys.argv[1])); rows = rows.get("trials", rows) if isinstance(rows, dict) else rows
print(" ".join(str(r["id"]) for r in rows))' "$work/trials.json"); do
  wrpn -o json trial metrics "$t" --name top1 >"$work/metrics-$t.json"
  python3 - "$work/metrics-$t.json" "$t" <<'EOF' || die "trial $t lost its metric rows"
import json, sys
rows = json.load(open(sys.argv[1]))["points"]
steps = [p["step"] for p in rows]
assert steps, f"trial {sys.argv[2]}: no top1 rows"
assert len(set(steps)) == len(steps), f"trial {sys.argv[2]}: a step stored twice: {steps}"
print(f"trial {sys.argv[2]}: {len(rows)} top1 row(s)")
EOF
done

# Prometheus scraped the coordinator (through the service name) and has the trial gauge.
prom_ok=""
for _ in $(seq 90); do
  body=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/query?query=wrpn_trials%7Bjob%3D%22wrpn-coordinator%22%7D" 2>/dev/null || true)
  if python3 -c 'import json, sys
d = json.loads(sys.argv[1]); r = d["data"]["result"]
ok = d["status"] == "success" and any(x["metric"].get("state") == "succeeded" and float(x["value"][1]) >= 2 for x in r)
sys.exit(0 if ok else 1)' "$body" 2>/dev/null; then prom_ok=$body; break; fi
  sleep 1
done
[[ -n $prom_ok ]] || die "Prometheus has no wrpn_trials{state=\"succeeded\"} >= 2 from the coordinator: ${body:-no answer}"
log "Prometheus: wrpn_trials from job wrpn-coordinator, succeeded >= 2"
phase checks

"${compose[@]}" down -v --remove-orphans
project_down=1
left=$( { dk ps -aq --filter "label=com.docker.compose.project=$project"
          dk network ls -q --filter "label=com.docker.compose.project=$project"
          dk volume ls -q --filter "label=com.docker.compose.project=$project"; } )
[[ -z $left ]] || die "down -v left: $left"
log "down -v: no container, network or volume of $project left"
rm -rf "$work"
phase compose-down
log "PASS"
