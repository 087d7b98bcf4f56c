#!/usr/bin/env bash
# Two DCS-driven features on the `make up` topology, whose REST API asks for credentials:
#   failsafe_mode: all three etcd members stop for three TTLs; the leader keeps its role and takes
#   writes through the router the whole time, because every replica confirms it over the
#   authenticated POST /failsafe; etcd comes back and nothing changed hands.
#   permanent slots: a permanent logical and a permanent physical slot from the DCS config exist
#   on the primary; the logical one is copied to the replicas and advanced to the primary's
#   position (Patroni 3.0 keeps only the logical ones on replicas); after a kill -9 of the
#   primary the new primary has both, and the logical slot hands out exactly the changes its
#   consumer had not read yet.
# usage: failsafe_slots_test.sh <directory holding pgha and pghactl>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
PY=/usr/bin/python3

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")

step "up (etcd $ETCD, PostgreSQL $PG, REST $REST, write $WRITE)"
up_and_settle
ETCD_ENDPOINTS=127.0.0.1:$ETCD,127.0.0.1:$((ETCD + 100)),127.0.0.1:$((ETCD + 200))
rest_of() { echo "http://127.0.0.1:$((REST + ${1#pg-}))"; }

step "the REST API asks for credentials: POST /failsafe without them is refused"
leader=$(leader_now)
replica=pg-0
[ "$leader" != pg-0 ] || replica=pg-1
[ "$(code -X POST -d '{}' "$(rest_of "$replica")/failsafe")" = 401 ] ||
  fail "POST /failsafe without credentials was not refused with 401"

step "failsafe_mode: every etcd member stops for 3 TTLs; $leader stays primary and takes writes"
"${CTL[@]}" edit-config pg-ha -s failsafe_mode=true --force -q >/dev/null || fail "edit-config failsafe_mode"
failsafe_key_written() { etcdctl --endpoints="$ETCD_ENDPOINTS" get --print-value-only /service/pg-ha/failsafe | has "$leader"; }
eventually 30 "the leader writes the failsafe key with the members" failsafe_key_written
sql "$WRITE" "CREATE TABLE failsafe_test(id int)" >/dev/null || fail "create failsafe_test"
for name in etcd-1 etcd-2 etcd-3; do kill -TERM "$(cat "$PGHA_STATE_DIR/run/$name.pid")"; done
outage_start=$SECONDS
failsafe_active() { curl -s -m 2 "$(rest_of "$leader")/patroni" | has '"failsafe_mode_is_active": true'; }
eventually 30 "the leader reports failsafe_mode_is_active" failsafe_active
writes=0
while [ $((SECONDS - outage_start)) -lt 18 ]; do
  [ "$(code "$(rest_of "$leader")/primary")" = 200 ] ||
    fail "$leader stopped answering /primary $((SECONDS - outage_start)) s into the etcd outage"
  sql "$WRITE" "INSERT INTO failsafe_test VALUES ($writes)" >/dev/null ||
    fail "a write through $WRITE failed $((SECONDS - outage_start)) s into the etcd outage"
  writes=$((writes + 1))
  sleep 1
done
for node in pg-0 pg-1 pg-2; do
  [ "$node" = "$leader" ] && continue
  [ "$(code "$(rest_of "$node")/replica")" = 200 ] || fail "$node is not a replica during the outage"
done
echo "$writes writes through $WRITE in $((SECONDS - outage_start)) s without etcd (ttl 6)"
"$CLUSTER" up >"$WORK/up-etcd.log" 2>&1 || fail "cluster.sh up after the outage: $(tail -5 "$WORK/up-etcd.log")"
eventually 60 "the cluster settles after etcd is back" settled
[ "$(leader_now)" = "$leader" ] || fail "the leader changed across the outage: $(leader_now)"
[ "$(sql "$WRITE" "SELECT count(*) FROM failsafe_test")" = "$writes" ] || fail "writes made during the outage are missing"
failsafe_over() { ! failsafe_active; }
eventually 30 "failsafe_mode_is_active clears" failsafe_over

step "permanent slots: a logical and a physical one from the DCS config"
"${CTL[@]}" edit-config pg-ha -p wal_level=logical -p hot_standby_feedback=on --force -q >/dev/null ||
  fail "edit-config wal_level"
# Each member flags the restart once it has reloaded the change; restart --pending skips the
# others (with an error), as patronictl does.
pending_everywhere() {
  local i
  for i in 0 1 2; do curl -s -m 2 "http://127.0.0.1:$((REST + i))/patroni" | has '"pending_restart": true' || return 1; done
}
eventually 30 "every member flags the pending restart" pending_everywhere
out=$("${CTL[@]}" restart pg-ha --pending --force 2>&1) || fail "restart --pending: $out"
wal_level_everywhere() {
  local i
  for i in 0 1 2; do [ "$(sql "$((PG + i))" "SHOW wal_level")" = logical ] || return 1; done
}
eventually 90 "wal_level is logical on every member" wal_level_everywhere
eventually 60 "the cluster settles after the restarts" settled
cat >"$WORK/slots.yml" <<'EOF'
slots:
  perm_logical:
    type: logical
    database: postgres
    plugin: test_decoding
  perm_physical:
    type: physical
EOF
"${CTL[@]}" edit-config pg-ha --apply "$WORK/slots.yml" --force -q >/dev/null || fail "edit-config slots"
leader=$(leader_now)
leader_port=$((PG + ${leader#pg-}))
slots_on() { sql "$1" "SELECT string_agg(slot_name || ':' || slot_type, ',' ORDER BY slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'perm_%'"; }
leader_has_slots() { [ "$(slots_on "$leader_port")" = "perm_logical:logical,perm_physical:physical" ]; }
eventually 30 "$leader creates both permanent slots" leader_has_slots

# The consumer reads the first batch; the second batch stays unread.
sql "$WRITE" "CREATE TABLE slot_test(id int); INSERT INTO slot_test SELECT generate_series(1, 5)" >/dev/null
consumed=$(sql "$leader_port" "SELECT count(*) FROM pg_logical_slot_get_changes('perm_logical', NULL, NULL) WHERE data LIKE 'table public.slot_test: INSERT%'")
[ "$consumed" = 5 ] || fail "the consumer read $consumed inserts, not 5"
sql "$WRITE" "INSERT INTO slot_test SELECT generate_series(6, 8)" >/dev/null
sql "$leader_port" "CHECKPOINT" >/dev/null
flushed=$(sql "$leader_port" "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'perm_logical'")
replica_caught_up() {  # port: the logical slot at the consumer's position, every row replayed
  [ "$(slots_on "$1")" = "perm_logical:logical" ] &&
    [ "$(sql "$1" "SELECT confirmed_flush_lsn >= '$flushed' FROM pg_replication_slots WHERE slot_name = 'perm_logical'")" = t ] &&
    [ "$(sql "$1" "SELECT count(*) FROM slot_test")" = 8 ]
}
for node in pg-0 pg-1 pg-2; do
  [ "$node" = "$leader" ] && continue
  eventually 60 "$node has the logical slot at $flushed" replica_caught_up "$((PG + ${node#pg-}))"
done

step "kill -9 of $leader: the new primary has both slots and the unread changes"
kill -9 "$(cat "$PGHA_STATE_DIR/run/$leader.pid")" "$(head -1 "$PGHA_STATE_DIR/$leader/data/postmaster.pid")"
new_leader_elected() { local l; l=$(leader_now) && [ -n "$l" ] && [ "$l" != "$leader" ]; }
eventually 60 "a new leader" new_leader_elected
new_leader=$(leader_now)
new_port=$((PG + ${new_leader#pg-}))
new_primary_ready() { [ "$(sql "$new_port" "SELECT pg_is_in_recovery()")" = f ]; }
eventually 30 "$new_leader is promoted" new_primary_ready
new_primary_has_slots() { [ "$(slots_on "$new_port")" = "perm_logical:logical,perm_physical:physical" ]; }
eventually 30 "the new primary has both permanent slots" new_primary_has_slots
changes=$(sql "$new_port" "SELECT string_agg(substring(data from 'id\[integer\]:([0-9]+)'), ',') FROM pg_logical_slot_get_changes('perm_logical', NULL, NULL) WHERE data LIKE 'table public.slot_test: INSERT%'")
echo "changes the new primary's slot hands out: $changes"
[ "$changes" = "6,7,8" ] || fail "the logical slot on $new_leader handed out '$changes', not the unread 6,7,8"

step "$leader comes back as a replica and gets the logical slot"
"$CLUSTER" up >"$WORK/up-again.log" 2>&1 || fail "cluster.sh up after the crash: $(tail -5 "$WORK/up-again.log")"
eventually 90 "the cluster settles with $leader back" settled
old_has_slot() { [ "$(slots_on "$leader_port")" = "perm_logical:logical" ]; }
eventually 60 "$leader has the permanent logical slot" old_has_slot
echo "PASS"
