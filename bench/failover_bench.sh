#!/usr/bin/env bash
# Builds (release) and measures failover times of a 3-node pgha cluster; run as root (the
# nodes run as the postgres user). Extra arguments go to the benchmark, e.g.
#   bench/failover_bench.sh --ttl 30 --loop-wait 10 --retry-timeout 10 --trials 3
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release -G Ninja >/dev/null
cmake --build --preset release -j "$(nproc)" --target failover_bench pgha
build/release/bench/failover_bench "$@"
