#!/usr/bin/env bash
# Builds (release) and runs the etcd client benchmark; prints per-operation round trips of
# pgha's etcd3 client and of etcdctl, and their ratio, measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release -G Ninja >/dev/null
cmake --build --preset release -j "$(nproc)" --target etcd_client_bench
build/release/bench/etcd_client_bench "$@"
