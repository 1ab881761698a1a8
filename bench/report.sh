# Sourced by the shell benchmarks: the report lines of bench/bench_report.h.
#   bench_counts BENCH PHASE key=value ...   COUNTS line
#   bench_fail BENCH PHASE REASON...         FAILED line, then exit 1
# The commit is the source tree's (`git describe --always --dirty`), "unknown" outside git.
bench_commit() {
  git -C "$(dirname "${BASH_SOURCE[0]}")" describe --always --dirty --abbrev=10 2>/dev/null || echo unknown
}
bench_counts() {
  local bench=$1 phase=$2
  shift 2
  echo "COUNTS $bench $phase commit=$(bench_commit) $*"
}
bench_fail() {
  local bench=$1 phase=$2
  shift 2
  echo "FAILED $bench $phase commit=$(bench_commit) reason=$*"
  exit 1
}
