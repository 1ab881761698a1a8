#!/usr/bin/env bash
# run_fuzz.sh TARGET CORPUS RUNS: replays every file of CORPUS (must pass), then runs RUNS fresh
# executions starting from it, with a per-input timeout (a hang fails) and a memory cap. New
# inputs go to a scratch folder, never into the repository's corpus. Prints libFuzzer's stats.
set -euo pipefail
target=$1 corpus=$2 runs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
common=(-timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
        -artifact_prefix="$scratch/")
# 1) regression: every seed (including the files of fixed crashes) once.
"$target" "${common[@]}" "$corpus"/* >/dev/null 2>&1 || {
  echo "run_fuzz: a corpus file fails:"; "$target" "${common[@]}" "$corpus"/* 2>&1 | tail -40; exit 1; }
# 2) bounded fuzzing from the corpus.
if ! "$target" "${common[@]}" -seed=1 -runs="$runs" "$scratch" "$corpus" >"$scratch/log" 2>&1; then
  tail -60 "$scratch/log"
  for a in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-*; do
    [[ -e "$a" ]] && { echo "artifact: $a"; base64 "$a" | head -20; }
  done
  exit 1
fi
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|INFO: .*corpus|Done" "$scratch/log" || true
echo "run_fuzz: $(basename "$target"): $(ls "$corpus" | wc -l) seed files, $runs runs, no crash, leak or timeout"
