#!/usr/bin/env bash
# Every benchmark once, with parameters small enough for CI (`make bench-smoke`, which .ci/run
# runs after the tests): a benchmark that no longer builds, starts its topology or finishes fails
# here instead of on the day someone needs its figures. Each one's last lines are printed; the
# figures of runs this short are not the benchmark's, and its report files are not kept. Run as root, after
# `make build`. A failure prints the tail of that benchmark's output.
#   bench/smoke.sh [name...]   (default: all of etcd_client failover exporter_scrape rest_idle
#                               router cold_start stack session)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the benchmarks run PostgreSQL as the postgres user" >&2; exit 2; }
WORK=$(mktemp -d /tmp/pgha-bench-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PY=/usr/bin/python3

run_etcd_client() { bench/etcd_client_bench.sh; }
run_failover() { bench/failover_bench.sh --ttl 6 --loop-wait 1 --retry-timeout 2 --trials 1; }
run_exporter_scrape() { bench/exporter_scrape_bench.sh --tables 20 --databases 1 --scrapes 3; }
run_rest_idle() { bench/rest_idle_bench.sh --idle "0 8" --checks 3; }
# ttl 6: the router bench's pgbench runs at the longest ttl given, and at ttl 2 two cores saturated
# by pgbench may rightly cost the primary its lock.
run_router() { $PY bench/router_bench.py --settings 6/1/2 --trials 1 --seconds 3 --out "$WORK/results"; }
run_cold_start() { bench/cold_start_bench.sh 1; }
run_session() {
  $PY bench/session_bench.py --trials 1 --seconds 12 --throughput-seconds 3 --out "$WORK/results"
}
run_stack() {
  $PY bench/stack_bench.py --settings 6/1/2 --trials 1 --footprint-seconds 3 --out "$WORK/results"
}

names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(etcd_client failover exporter_scrape rest_idle router cold_start stack session)
failed=()
for name in "${names[@]}"; do
  declare -F "run_$name" >/dev/null || { echo "unknown benchmark: $name" >&2; exit 2; }
  echo "=== bench smoke: $name"
  started=$SECONDS
  if "run_$name" >"$WORK/$name.log" 2>&1; then
    echo "$name: finished in $((SECONDS - started)) s; the end of its output (figures of a run this short):"
    tail -12 "$WORK/$name.log" | sed 's/^/  /'
  else
    echo "$name: FAILED (exit $?) after $((SECONDS - started)) s; the end of its output:"
    tail -40 "$WORK/$name.log" | sed 's/^/  /'
    failed+=("$name")
  fi
done
[ "${#failed[@]}" = 0 ] || { echo "bench smoke: failed: ${failed[*]}" >&2; exit 1; }
echo "bench smoke: all ${#names[@]} benchmarks ran"
