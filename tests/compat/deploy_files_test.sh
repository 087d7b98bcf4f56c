#!/usr/bin/env bash
# The files in deploy/ are usable as shipped: HAProxy accepts haproxy.cfg with the example
# environment, systemd accepts the units (pointed at the built binaries), and pgha and
# pgha-router accept the sample patroni.yml.
# usage: deploy_files_test.sh <pgha binary>
set -euo pipefail
PGHA=$1
DEPLOY=$(cd "$(dirname "$0")/../../deploy" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

(set -a && . "$DEPLOY/haproxy.env.example" && haproxy -c -q -f "$DEPLOY/haproxy.cfg") ||
  { echo "FAIL: HAProxy refuses deploy/haproxy.cfg"; exit 1; }

command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is missing (scripts/setup.sh installs systemd)"; exit 1; }
for unit in "$DEPLOY"/systemd/*.service; do
  name=$(basename "$unit")
  [ "$name" = "pgha@.service" ] && name=pgha@pg-0.service
  sed "s|/usr/local/bin/pgha|$PGHA|g" "$unit" >"$WORK/$name"
  out=$(systemd-analyze verify "$WORK/$name" 2>&1 | grep -v -e 'Failed to open /etc/' || true)
  [ -z "$out" ] || { echo "FAIL: systemd-analyze $name: $out"; exit 1; }
done

"$PGHA" --validate-config "$DEPLOY/patroni.yml" >/dev/null ||
  { echo "FAIL: pgha refuses deploy/patroni.yml"; exit 1; }
# The router runs on a node's configuration as it is.
"$PGHA-router" --validate-config "$DEPLOY/patroni.yml" >/dev/null ||
  { echo "FAIL: pgha-router refuses deploy/patroni.yml"; exit 1; }
echo PASS
