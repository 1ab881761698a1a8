#!/usr/bin/env bash
# deploy/compose/secrets/make-tokens.sh writes the files docker-compose.yml names as secrets, with
# a token file the coordinator can read (admin, viewer, worker) and a worker token that matches
# it, and refuses to overwrite existing secrets without --force.
set -euo pipefail
compose_dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$compose_dir/secrets/make-tokens.sh" "$tmp/s" >/dev/null
for f in tokens worker-token admin-token grafana-admin-password; do
  [[ -s $tmp/s/$f ]] || fail "$f not written"
  grep -q "secrets/$f}" "$compose_dir/docker-compose.yml" || [[ $f == admin-token ]] ||
    fail "docker-compose.yml does not use secrets/$f"
done
[[ $(awk '{print $1}' "$tmp/s/tokens" | sort | tr '\n' ' ') == "admin viewer worker " ]] ||
  fail "token file roles: $(cat "$tmp/s/tokens")"
[[ $(awk '$1=="worker"{print $2}' "$tmp/s/tokens") == "$(cat "$tmp/s/worker-token")" ]] ||
  fail "worker-token differs from the worker line of tokens"
[[ $(awk '$1=="admin"{print $2}' "$tmp/s/tokens") == "$(cat "$tmp/s/admin-token")" ]] ||
  fail "admin-token differs from the admin line of tokens"
for role in admin viewer worker; do
  len=$(awk -v r=$role '$1==r{print length($2)}' "$tmp/s/tokens")
  ((len >= 32)) || fail "$role token has only $len characters"
done
[[ $(awk '{print $2}' "$tmp/s/tokens" | sort -u | wc -l) == 3 ]] || fail "tokens are not distinct"

before=$(cat "$tmp/s/tokens")
if bash "$compose_dir/secrets/make-tokens.sh" "$tmp/s" 2>"$tmp/err"; then fail "overwrote secrets"; fi
grep -q -- --force "$tmp/err" || fail "refusal does not mention --force: $(cat "$tmp/err")"
[[ $(cat "$tmp/s/tokens") == "$before" ]] || fail "tokens changed by a refused run"
bash "$compose_dir/secrets/make-tokens.sh" --force "$tmp/s" >/dev/null
[[ $(cat "$tmp/s/tokens") != "$before" ]] || fail "--force did not write new tokens"
echo "make-tokens: ok"
