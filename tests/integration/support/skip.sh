# Sourced by the shell tests. A test that cannot run here must not pass quietly: skip_test fails
# the run unless PGHA_ALLOW_SKIP says why a skip is acceptable (then it exits 77, which CTest
# reports as skipped), and require_tool fails when something scripts/setup.sh installs is missing.
skip_test() {  # reason...
  if [ -n "${PGHA_ALLOW_SKIP:-}" ]; then
    echo "SKIP (allowed, PGHA_ALLOW_SKIP=$PGHA_ALLOW_SKIP): $*"
    exit 77
  fi
  echo "FAIL: this test cannot run here: $*. A skipped test fails the run; set PGHA_ALLOW_SKIP=<why> to allow it." >&2
  exit 1
}

require_tool() {  # command package-description
  command -v "$1" >/dev/null ||
    { echo "FAIL: $1 is missing: scripts/setup.sh installs it ($2)" >&2; exit 1; }
}
