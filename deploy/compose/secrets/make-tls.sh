#!/usr/bin/env bash
# Writes a private CA and a certificate it signed for the coordinator, the files
# docker-compose.https.yml reads (next to this script, or into --dir DIR):
#   ca.crt             the CA: the workers and Prometheus trust it; give it to the CLI
#                      (wrpn --tls-ca ca.crt), the Python client and browsers
#   ca.key             the CA's key (not mounted anywhere; keep it, or delete it, offline)
#   tls.crt, tls.key   the coordinator's certificate and key, valid for `coordinator` (the
#                      Compose address), localhost, 127.0.0.1 and every NAME given (host names
#                      or IP addresses users reach the coordinator by)
# Usage: make-tls.sh [--force] [--dir DIR] [--days N] [NAME...]
# Refuses to overwrite existing files unless --force is given. Needs the openssl tool.
set -euo pipefail
force=0 days=825
dir=$(cd "$(dirname "$0")" && pwd)
while (($#)); do
  case $1 in
    --force) force=1; shift ;;
    --dir) dir=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    -*) echo "make-tls: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
mkdir -p "$dir"
chmod 0700 "$dir"
for f in ca.crt ca.key tls.crt tls.key; do
  if [[ -e $dir/$f && $force -eq 0 ]]; then
    echo "make-tls: $dir/$f exists; pass --force to replace the CA and the certificate" >&2
    exit 1
  fi
done
san="DNS:coordinator,DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days "$days" -subj "/CN=wrpn CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
openssl req "${ec[@]}" -subj "/CN=${1:-coordinator}" -keyout "$tmp/tls.key" -out "$tmp/tls.csr" \
  2>"$tmp/log" || { cat "$tmp/log" >&2; exit 1; }
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" \
  > "$tmp/ext"
openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days "$days" -extfile "$tmp/ext" -out "$tmp/tls.crt" 2>"$tmp/log" ||
  { cat "$tmp/log" >&2; exit 1; }
# The containers run as uid 10001 and read these through bind mounts (like make-tokens.sh's).
install -m 0644 "$tmp/ca.crt" "$tmp/tls.crt" "$tmp/tls.key" "$dir/"
install -m 0600 "$tmp/ca.key" "$dir/"
echo "make-tls: wrote ca.crt, ca.key, tls.crt and tls.key in $dir ($san)"
