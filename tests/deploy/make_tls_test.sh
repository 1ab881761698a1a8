#!/usr/bin/env bash
# deploy/compose/secrets/make-tls.sh writes the files docker-compose.https.yml names as secrets: a
# CA and a certificate it signed that verifies for `coordinator`, localhost, 127.0.0.1 and the names
# given, whose key matches it, readable by the containers' user; it refuses to overwrite them.
set -euo pipefail
compose_dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$compose_dir/secrets/make-tls.sh" --dir "$tmp/s" wrpn.example.org 10.1.2.3 >/dev/null
for f in ca.crt tls.crt tls.key; do
  [[ -s $tmp/s/$f ]] || fail "$f not written"
  grep -q "secrets/$f}" "$compose_dir/docker-compose.https.yml" ||
    fail "docker-compose.https.yml does not use secrets/$f"
  [[ $(stat -c %a "$tmp/s/$f") == 644 ]] || fail "$f is not readable by uid 10001"
done
[[ $(stat -c %a "$tmp/s/ca.key") == 600 ]] || fail "ca.key is readable by others"
for name in coordinator localhost wrpn.example.org; do
  openssl verify -CAfile "$tmp/s/ca.crt" -verify_hostname "$name" "$tmp/s/tls.crt" >/dev/null ||
    fail "tls.crt does not verify for $name"
done
for ip in 127.0.0.1 10.1.2.3; do
  openssl verify -CAfile "$tmp/s/ca.crt" -verify_ip "$ip" "$tmp/s/tls.crt" >/dev/null ||
    fail "tls.crt does not verify for $ip"
done
if openssl verify -CAfile "$tmp/s/ca.crt" -verify_hostname other.example.org "$tmp/s/tls.crt" \
    >/dev/null 2>&1; then
  fail "tls.crt verifies for a name it was not made for"
fi
[[ $(openssl x509 -in "$tmp/s/tls.crt" -noout -pubkey) == $(openssl pkey -in "$tmp/s/tls.key" -pubout) ]] ||
  fail "tls.key does not belong to tls.crt"

before=$(cat "$tmp/s/tls.crt")
if bash "$compose_dir/secrets/make-tls.sh" --dir "$tmp/s" 2>"$tmp/err"; then fail "overwrote the files"; fi
grep -q -- "--force" "$tmp/err" || fail "refusal does not mention --force: $(cat "$tmp/err")"
[[ $(cat "$tmp/s/tls.crt") == "$before" ]] || fail "tls.crt changed after a refused run"
bash "$compose_dir/secrets/make-tls.sh" --force --dir "$tmp/s" >/dev/null
[[ $(cat "$tmp/s/tls.crt") != "$before" ]] || fail "--force did not replace tls.crt"
echo "make-tls: ok"
