#!/usr/bin/env bash
# docs/migration.md, done end to end: a running Patroni 3.0.2 cluster (the `make up` topology
# with PGHA_AGENT=patroni) is moved to pgha one node at a time while a client writes through the
# write port, and then moved back to Patroni the same way:
#   Patroni x3 -> each replica restarted under pgha (mixed cluster, Patroni leads) -> switchover
#   to a pgha node with Patroni's patronictl -> the old Patroni leader restarted under pgha ->
#   pgha x3 -> back: each replica under Patroni, switchover with pghactl, the last pgha node.
# Every step checks that the cluster settles with one leader and two streaming replicas and
# that the node runs the agent it should; at the end no acknowledged write is missing.
# usage: migration_test.sh <directory holding pgha and pghactl>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
SUPPORT=$REPO/tests/integration/support
PY=/usr/bin/python3  # Debian's python, with psycopg2
require_tool patroni "Debian's patroni package"
require_tool patronictl "Debian's patroni package"

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CONFIG=$PGHA_STATE_DIR/config/pg-0.yml
CTL=("$BIN/pghactl" -c "$CONFIG")
PCTL=(patronictl -c "$CONFIG")

# The agent behind node $1, from the command line of the process cluster.sh recorded.
agent_of() {
  local pid
  pid=$(cat "$PGHA_STATE_DIR/run/$1.pid" 2>/dev/null) || { echo none; return; }
  case $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) in
    *"$BIN/pgha "*) echo pgha ;;
    *patroni*) echo patroni ;;
    *) echo none ;;
  esac
}
agents() { echo "pg-0=$(agent_of pg-0) pg-1=$(agent_of pg-1) pg-2=$(agent_of pg-2)"; }

# Stops node $1's agent as an operator would (SIGTERM: both agents stop PostgreSQL and leave),
# then `cluster.sh up` with PGHA_AGENT=$2 starts only that node again, on the same data
# directory and the same patroni.yml.
move_node() {
  local node=$1 agent=$2 pid
  pid=$(cat "$PGHA_STATE_DIR/run/$node.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$node's agent did not stop within 60 s"
  PGHA_AGENT=$agent "$CLUSTER" up >"$WORK/up-$node-$agent.log" 2>&1 ||
    fail "cluster.sh up with $agent for $node: $(tail -5 "$WORK/up-$node-$agent.log")"
  [ "$(agent_of "$node")" = "$agent" ] || fail "$node runs $(agent_of "$node"), not $agent"
  eventually 90 "the cluster settles after $node moved to $agent" settled
  echo "$node now runs $agent; leader $(leader_now); $(agents)"
}

# Moves the whole cluster to agent $1: replicas first, then a switchover (with tool $2) away
# from the leader to a moved node, then the old leader.
move_cluster() {
  local agent=$1 tool=$2 leader node candidate out
  leader=$(leader_now)
  for node in pg-0 pg-1 pg-2; do
    [ "$node" = "$leader" ] || move_node "$node" "$agent"
  done
  rewinds_before=$(rewinds "$leader")
  candidate=pg-0
  [ "$leader" != pg-0 ] || candidate=pg-1
  if [ "$tool" = patronictl ]; then
    out=$("${PCTL[@]}" switchover pg-ha --leader "$leader" --candidate "$candidate" --force 2>&1) ||
      fail "patronictl switchover: $out"
  else
    out=$("${CTL[@]}" switchover pg-ha --leader "$leader" --candidate "$candidate" --force 2>&1) ||
      fail "pghactl switchover: $out"
  fi
  grep -q "Successfully switched over to \"$candidate\"" <<<"$out" || fail "$tool switchover: $out"
  eventually 60 "$candidate leads after the switchover" leader_is "$candidate"
  eventually 90 "the cluster settles after the switchover" settled
  [ "$(rewinds "$leader")" = "$rewinds_before" ] || fail "$leader needed pg_rewind after a planned switchover"
  echo "switchover with $tool: $leader -> $candidate"
  move_node "$leader" "$agent"
}

step "a Patroni cluster (etcd $ETCD, PostgreSQL $PG, REST $REST, write $WRITE)"
up_and_settle patroni
[ "$(agents)" = "pg-0=patroni pg-1=patroni pg-2=patroni" ] || fail "not three Patroni nodes: $(agents)"
sql "$WRITE" "CREATE TABLE load_test(id bigint PRIMARY KEY)" >/dev/null || fail "create load_test"
$PY "$SUPPORT/write_load.py" "$WRITE" "$WORK/acked" "$WORK/stop" >"$WORK/load.json" &
LOAD_PID=$!
sleep 2

step "Patroni -> pgha, one node at a time, under the write load (switchover with patronictl)"
started=$SECONDS
move_cluster pgha patronictl
[ "$(agents)" = "pg-0=pgha pg-1=pgha pg-2=pgha" ] || fail "not three pgha nodes: $(agents)"
echo "Patroni -> pgha took $((SECONDS - started)) s"
rows_then=$(wc -l <"$WORK/acked")
"${PCTL[@]}" list pg-ha | has "Leader" || fail "patronictl list does not show the pgha leader"

step "pgha -> Patroni, the same way back (switchover with pghactl)"
started=$SECONDS
move_cluster patroni pghactl
[ "$(agents)" = "pg-0=patroni pg-1=patroni pg-2=patroni" ] || fail "not three Patroni nodes: $(agents)"
echo "pgha -> Patroni took $((SECONDS - started)) s"
[ "$(wc -l <"$WORK/acked")" -gt "$rows_then" ] || fail "no write was acknowledged while moving back"

step "no acknowledged write is missing"
sleep 2
touch "$WORK/stop"
wait "$LOAD_PID" || fail "the write load failed"
echo "write load across both migrations: $(cat "$WORK/load.json")"
leader=$(leader_now)
sql "$((PG + ${leader#pg-}))" "SELECT id FROM load_test" | sort -n >"$WORK/present"
lost=$(sort -n "$WORK/acked" | comm -23 - "$WORK/present" | wc -l)
echo "acknowledged rows lost: $lost of $(wc -l <"$WORK/acked")"
[ "$lost" = 0 ] || fail "$lost acknowledged rows are missing on the primary"
[ "$(wc -l <"$WORK/acked")" -gt 100 ] || fail "the write load acknowledged almost nothing"
# Every replica has every row too: the timelines joined up, nobody was left behind.
for node in pg-0 pg-1 pg-2; do
  [ "$node" = "$leader" ] && continue
  replica_has_all() { [ "$(sql "$((PG + ${node#pg-}))" "SELECT count(*) FROM load_test")" = "$(wc -l <"$WORK/present")" ]; }
  eventually 30 "$node has every row" replica_has_all
done
echo "PASS"
