#!/usr/bin/env bash
# Writes fresh random secrets for deploy/compose next to this script (or into DIR):
#   tokens                   the coordinator's token file (admin, viewer, worker)
#   worker-token             the worker token alone, for wrpn-worker --token-file
#   admin-token              the admin token alone, for the wrpn CLI (--token-file or WRPN_TOKEN)
#   grafana-admin-password   Grafana's admin password
# Refuses to overwrite existing files unless --force is given.
set -euo pipefail
force=0
if [[ ${1:-} == --force ]]; then force=1; shift; fi
dir=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$dir"
chmod 0700 "$dir"
for f in tokens worker-token admin-token grafana-admin-password; do
  if [[ -e $dir/$f && $force -eq 0 ]]; then
    echo "make-tokens: $dir/$f exists; pass --force to replace every secret" >&2
    exit 1
  fi
done
token() { head -c 48 /dev/urandom | base64 | tr -d '=+/\n' | head -c 43; }
admin=$(token) viewer=$(token) worker=$(token)
umask 022   # the containers run as uid 10001 and read these through bind mounts
printf 'admin %s\nviewer %s\nworker %s\n' "$admin" "$viewer" "$worker" > "$dir/tokens"
printf '%s\n' "$worker" > "$dir/worker-token"
printf '%s\n' "$admin" > "$dir/admin-token"
token > "$dir/grafana-admin-password"
echo "make-tokens: wrote tokens, worker-token, admin-token and grafana-admin-password in $dir"
