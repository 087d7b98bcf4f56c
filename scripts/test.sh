#!/usr/bin/env bash
# The README's test command: installs what is missing, checks formatting, builds with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit and fuzz-replay tests, builds
# with ThreadSanitizer (clang, -Wthread-safety) and runs the unit tests and a threaded subset,
# then builds the release configuration and runs the integration tests against real servers.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# Let ccache hit across clones in different folders (CI builds a fresh clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

# Seconds each phase took, printed at the end (and when a phase fails): what the 25-minute
# budget of make test is spent on.
phases=()
phase_started=$SECONDS
phase_name="setup and checks"
next_phase() {
  phases+=("$(printf '%5d s  %s' $((SECONDS - phase_started)) "$phase_name")")
  phase_name=$1
  phase_started=$SECONDS
}
print_phases() {
  local status=$?
  phases+=("$(printf '%5d s  %s' $((SECONDS - phase_started)) "$phase_name")")
  echo "make test: time per phase (exit status $status)"
  printf '  %s\n' "${phases[@]}"
  printf '  %5d s  in all\n' "$SECONDS"
}
trap print_phases EXIT

scripts/setup.sh
scripts/check_format.sh
scripts/check_deps.sh

next_phase "asan build"
cmake --preset asan -G Ninja >/dev/null
cmake --build --preset asan -j "$jobs"
next_phase "asan unit, process and fuzz-replay tests"
# --no-tests=error: a label that selects nothing is a failure, not a pass.
ctest --preset asan -L 'unit|process|fuzz' -j "$jobs" --timeout 300 --no-tests=error

# ThreadSanitizer, built with clang so that -Wthread-safety also checks the lock annotations
# (common/mutex.h) at compile time: the unit and process tests, then the servers that run in the
# test process (the router's session mode against a real PostgreSQL among them) and two handovers
# whose agents are built the same way. A report from any of these
# processes (the agents included, through log_path) fails the run.
next_phase "tsan build"
cmake --preset tsan -G Ninja >/dev/null
cmake --build --preset tsan -j "$jobs"
next_phase "tsan tests"
tsan_reports=$(mktemp -d /tmp/pgha-tsan.XXXXXX)
chmod 1777 "$tsan_reports"  # the agents run as postgres
tsan_failed=0
TSAN_OPTIONS="log_path=$tsan_reports/report" ctest --preset tsan -L 'unit|process' -j "$jobs" \
  --timeout 300 --no-tests=error || tsan_failed=1
TSAN_OPTIONS="log_path=$tsan_reports/report" ctest --preset tsan -L integration --timeout 600 -j "$jobs" \
  --no-tests=error \
  -R '^(RestServerTest|TlsTest|ProxyTest|SessionModeTest)\.|^HaClusterTest\.SigtermOfThePrimaryAgentHandsOverAtOnce$|^SlowLoopTest\.' ||
  tsan_failed=1
if compgen -G "$tsan_reports/report.*" >/dev/null; then
  cat "$tsan_reports"/report.*
  echo "ThreadSanitizer reported the races above" >&2
  tsan_failed=1
fi
rm -rf "$tsan_reports"
[ "$tsan_failed" = 0 ] || exit 1

next_phase "release build"
cmake --preset release -G Ninja >/dev/null
# Only what the integration tests run; benchmarks and unit tests were built above.
cmake --build --preset release -j "$jobs" --target pgha pgha-fence pghactl pgha-exporter pgha_integration_tests \
  pgha_postgres_integration_tests pgha-router pgha_router_integration_tests
# Two at a time: the tests that start whole clusters hold the `topology` or the `etcd` resource
# lock (tests/CMakeLists.txt, tests/integration/CMakeLists.txt), so at most one cluster of each
# kind runs, and the rest is light (a single PostgreSQL, the proxy, the exporter, file checks).
# The chaos short pass has its own label and target, `make chaos-short`, which CI runs after this.
next_phase "integration tests"
ctest --preset release -L integration --timeout 600 --no-tests=error -j "$jobs"
echo "make test: the chaos short pass is not part of make test; make chaos-short runs it (CI does)"
