#!/usr/bin/env bash
# deploy/prometheus/pgha-rules.yml is valid (promtool check rules) and each alert fires on the
# series that should raise it and only then (promtool test rules).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
promtool check rules "$REPO/deploy/prometheus/pgha-rules.yml"
cd "$HERE/prometheus"
promtool test rules pgha-rules-test.yml
