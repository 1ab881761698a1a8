#!/bin/sh
# Prints, one per line, the Debian (or Ubuntu) packages that own the shared libraries the given
# binaries load (ldd), so a slim runtime stage installs exactly those. Fails when a library is not
# found or belongs to no package (something built or copied by hand that the runtime would miss).
# Libraries under an --ignore PREFIX (copied into the image by other means) are skipped.
# --allow-missing NAME tolerates one unresolved library (libcuda.so.1: the NVIDIA container
# toolkit mounts the driver's at run time).
# Usage: runtime-packages.sh [--ignore PREFIX]... [--allow-missing NAME]... BINARY...
set -eu
ignore=""
missing_ok="^$"
while :; do
  case "${1:-}" in
    --ignore) ignore="$ignore $2"; shift 2 ;;
    --allow-missing) missing_ok="$missing_ok|^[[:space:]]*$2 "; shift 2 ;;
    *) break ;;
  esac
done
deps=$(ldd "$@" | grep -Ev "$missing_ok" || true)
if echo "$deps" | grep -q 'not found'; then
  echo "runtime-packages: unresolved libraries:" >&2
  echo "$deps" | grep 'not found' >&2
  exit 1
fi
libs=$(echo "$deps" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | sort -u)
kept=""
candidates=""
for lib in $libs; do
  skip=0
  for prefix in $ignore; do
    case "$lib" in "$prefix"*) skip=1 ;; esac
  done
  [ $skip -eq 1 ] && continue
  kept="$kept $lib"
  real=$(readlink -f "$lib")
  # usrmerge: a library may be registered under /lib or /usr/lib; ask for every spelling.
  candidates="$candidates $lib $real /usr$lib /usr$real ${lib#/usr} ${real#/usr}"
done
[ -n "$kept" ] || exit 0
# One dpkg query for all of them (each call reads the whole package database).
owners=$(dpkg -S $candidates 2>/dev/null || true)
pkgs=""
for lib in $kept; do
  real=$(readlink -f "$lib")
  pkg=""
  for path in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    pkg=$(echo "$owners" | awk -v p="$path" '{ f = $NF } f == p { sub(/:.*/, "", $1); print $1; exit }')
    [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no package owns $lib" >&2
    exit 1
  fi
  pkgs="$pkgs $pkg"
done
for p in $pkgs; do echo "$p"; done | sort -u
