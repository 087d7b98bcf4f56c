#!/usr/bin/env bash
# The README's test command: installs what is missing, checks formatting, builds with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit and fuzz-replay tests, then
# builds the release configuration and runs the integration tests against real servers.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# Let ccache hit across clones in different folders (CI builds a fresh clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

scripts/setup.sh
scripts/check_format.sh
scripts/check_deps.sh

cmake --preset asan -G Ninja >/dev/null
cmake --build --preset asan -j "$jobs"
# --no-tests=error: a label that selects nothing is a failure, not a pass.
ctest --preset asan -L 'unit|process|fuzz' -j "$jobs" --timeout 300 --no-tests=error

cmake --preset release -G Ninja >/dev/null
# Only what the integration tests run; benchmarks and unit tests were built above.
cmake --build --preset release -j "$jobs" --target pgha pgha-fence pghactl pgha-exporter pgha_integration_tests \
  pgha_postgres_integration_tests pgha-router pgha_router_integration_tests
# Integration tests share daemons' resources; they run one at a time.
ctest --preset release -L integration --timeout 600 --no-tests=error
