#!/usr/bin/env bash
# The cold start after a full crash, pgha against Patroni on the same `make up` topology and the
# same fault: pg-2 leads under a write load, both replicas' WAL receivers are stopped for 2 s (pg-2
# acknowledges commits only it has), every agent and postmaster is killed with -9, the leader key
# expires, and `make up` starts pg-0, pg-1, pg-2 in that order. Prints who leads afterwards and how
# many acknowledged writes are gone, per agent. Run as root, after `make build`.
# pg-2's agent is held (SIGSTOP) for STALL_LAST seconds (default 4, less than ttl 6) as soon as it
# starts: the last primary comes back a little after the others.
#   bench/cold_start_bench.sh [rounds]      (default 1 round per agent; AGENTS="pgha patroni")
set -euo pipefail
BIN=$(cd "$(dirname "$0")/../build/release/apps" && pwd)
. "$(dirname "$0")/../tests/integration/support/topology_lib.sh"
SUPPORT=$REPO/tests/integration/support
PY=/usr/bin/python3
ROUNDS=${1:-1}
STALL_LAST=${STALL_LAST:-4}  # seconds pg-2's agent is held at the start (ttl is 6)

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")
postmaster_of() { head -1 "$PGHA_STATE_DIR/$1/data/postmaster.pid" 2>/dev/null || true; }

round() {  # agent
  local agent=$1 leader node pid frozen=() acked lost
  "$CLUSTER" clean >/dev/null 2>&1 || true
  up_and_settle "$agent"
  sql "$WRITE" "CREATE TABLE load_test(id bigint PRIMARY KEY)" >/dev/null
  leader=$(leader_now)
  if [ "$leader" != pg-2 ]; then
    "${CTL[@]}" switchover pg-ha --leader "$leader" --candidate pg-2 --force >/dev/null
    eventually 60 "pg-2 leads" settled
  fi
  rm -f "$WORK/stop"
  $PY "$SUPPORT/write_load.py" "$WRITE" "$WORK/acked" "$WORK/stop" >/dev/null 2>&1 &
  local load=$!
  sleep 3
  for node in pg-0 pg-1; do
    pid=$(pgrep -P "$(postmaster_of "$node")" -f walreceiver || true)
    [ -z "$pid" ] || { kill -STOP "$pid"; frozen+=("$pid"); }
  done
  sleep 2
  # The stopped receivers die first: resumed, they would write what waits in their sockets.
  [ "${#frozen[@]}" -eq 0 ] || kill -KILL "${frozen[@]}" 2>/dev/null || true
  for node in pg-0 pg-1 pg-2; do
    kill -KILL "$(cat "$PGHA_STATE_DIR/run/$node.pid")" "$(postmaster_of "$node")" 2>/dev/null || true
  done
  touch "$WORK/stop"
  wait "$load" || true
  sleep 8  # ttl 6: the leader key expires
  # `up` waits for the whole cluster and may give up on a member that cannot rejoin; what counts
  # here is who leads and what it has.
  rm -f "$PGHA_STATE_DIR/run/pg-2.pid"
  PGHA_AGENT=$agent PGHA_HEALTH_TIMEOUT=90 "$CLUSTER" up >"$WORK/up.log" 2>&1 &
  local up=$!
  if [ "$STALL_LAST" != 0 ]; then
    # The last primary comes up a little later than the others (a slower host, a longer crash
    # recovery): its agent is stopped as soon as it starts, for less than ttl.
    eventually 30 "pg-2's agent starts" test -s "$PGHA_STATE_DIR/run/pg-2.pid"
    kill -STOP "$(cat "$PGHA_STATE_DIR/run/pg-2.pid")"
    sleep "$STALL_LAST"
    kill -CONT "$(cat "$PGHA_STATE_DIR/run/pg-2.pid")"
  fi
  wait "$up" || true
  eventually 120 "a writable leader" sql "$WRITE" "SELECT 1" >/dev/null
  read -r acked lost <<<"$($PY "$SUPPORT/lost_ids.py" "$WORK/acked" "$WRITE")"
  local whole=no
  settled && whole=yes
  printf '| %-7s | %-12s | %5s | %4s | %-18s | %d |\n' "$agent" "$(leader_now)" "$acked" "$lost" "$whole" "${#frozen[@]}"
}

echo "pg-2 (the last primary) held ${STALL_LAST}s at the start"
echo "| agent   | leader after | acked | lost | all three streaming | WAL receivers stopped |"
echo "|---------|--------------|-------|------|---------------------|-----------------------|"
for _ in $(seq 1 "$ROUNDS"); do
  for agent in ${AGENTS:-pgha patroni}; do round "$agent"; done
done
