#!/usr/bin/env bash
# The same patroni.yml is judged alike by Patroni's own validator and by `pgha --validate-config`:
# the sample in deploy/ is accepted by both, and broken variants are refused by both.
set -uo pipefail
pgha=$1
sample=$2
if ! command -v patroni >/dev/null; then
  echo "patroni is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # name, file, expected (accept|refuse)
  local name=$1 file=$2 expected=$3 p=accept g=accept
  patroni --validate-config "$file" >"$work/patroni.out" 2>&1 || p=refuse
  "$pgha" --validate-config "$file" >"$work/pgha.out" 2>&1 || g=refuse
  if [ "$p" != "$expected" ] || [ "$g" != "$expected" ]; then
    echo "FAIL $name: expected $expected, patroni: $p, pgha: $g"
    sed 's/^/  patroni: /' "$work/patroni.out"
    sed 's/^/  pgha: /' "$work/pgha.out"
    failures=$((failures + 1))
  else
    echo "ok   $name: both $expected"
  fi
}
check sample "$sample" accept
sed '/^scope:/d' "$sample" >"$work/no-scope.yml"
check no-scope "$work/no-scope.yml" refuse
sed 's/^  listen: 0.0.0.0:8008/  listen: 0.0.0.0:notaport/' "$sample" >"$work/bad-port.yml"
check bad-restapi-port "$work/bad-port.yml" refuse
sed 's/^    ttl: 30/    ttl: thirty/' "$sample" >"$work/bad-ttl.yml"
check bad-ttl "$work/bad-ttl.yml" refuse
# Started as root, the agent refuses (PostgreSQL must never run as root) and says how to run it.
if [ "$(id -u)" = 0 ]; then
  if out=$("$pgha" "$sample" 2>&1); then
    echo "FAIL root: pgha ran as root"
    failures=$((failures + 1))
  elif ! grep -q "refusing to run as root" <<<"$out"; then
    echo "FAIL root: unclear refusal: $out"
    failures=$((failures + 1))
  else
    echo "ok   root: refused with a clear message"
  fi
fi
exit $((failures > 0))
