#!/usr/bin/env bash
# The dependency rule of docs/architecture.md, checked: ha is pure (model + common only), and the
# adapters' libraries appear only in their adapters.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# ha links only model and common.
links=$(tr '\n' ' ' <src/ha/CMakeLists.txt | grep -o 'target_link_libraries([^)]*)' || true)
for lib in $(echo "$links" | tr -d '()' | tr ' ' '\n' | grep '^pgha_' || true); do
  case "$lib" in
    pgha_ha | pgha_model | pgha_common | pgha_warnings) ;;
    *) echo "deps: pgha_ha links $lib; ha may link only model and common"; fail=1 ;;
  esac
done
# ha includes only its own, model's and common's headers (and std/fmt).
bad=$(grep -hE '#include "' src/ha/*.h src/ha/*.cc | grep -vE '"(ha|model|common)/' || true)
if [ -n "$bad" ]; then
  echo "deps: src/ha includes outside model/common: $bad"
  fail=1
fi
# The router reads the DCS and the members' REST API; it knows nothing of the agent, the HA
# decision or a local PostgreSQL.
bad=$(grep -hE '#include "' src/router/*.h src/router/*.cc | grep -E '"(agent|ha|postgres|cli)/' || true)
if [ -n "$bad" ]; then
  echo "deps: src/router includes the agent's side: $bad"
  fail=1
fi
# The REST API serves what the agent publishes (model/node_status.h) through hooks that apps/
# wires; it never includes or links the agent.
bad=$(grep -hE '#include "agent/' src/api/*.h src/api/*.cc src/api/http/*.h src/api/http/*.cc || true)
if [ -n "$bad" ] || grep -q 'pgha_agent' src/api/CMakeLists.txt; then
  echo "deps: src/api depends on the agent: ${bad:-src/api/CMakeLists.txt links pgha_agent}"
  fail=1
fi
# I/O libraries stay in their adapters.
check_only_in() {  # header-pattern allowed-dir
  local hits
  hits=$(grep -rlE "#include <$1" src | grep -vE "^src/$2/" || true)
  if [ -n "$hits" ]; then
    echo "deps: <$1> used outside src/$2: $hits"
    fail=1
  fi
}
check_only_in 'httplib.h' '(dcs/etcd3|api/http|metrics/http)'
check_only_in 'libpq-fe.h' 'postgres'
check_only_in 'yaml-cpp' 'config'
[ "$fail" = 0 ] && echo "deps: the dependency rule holds"
exit "$fail"
