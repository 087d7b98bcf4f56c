#!/usr/bin/env bash
# A standby cluster follows a primary cluster across the primary cluster's failover:
#   the `make up` topology is the primary cluster; a second scope (two pgha nodes on the same
#   etcd) is a standby cluster whose standby_cluster points at the primary cluster's write port
#   -> the standby leader copies the primary cluster and streams from it, its replica cascades
#   from the standby leader, neither takes writes -> kill -9 of the primary cluster's leader ->
#   rows written to the new primary reach both standby nodes, on the new timeline.
# usage: standby_cluster_test.sh <directory holding pgha and pghactl>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
PG_BIN=/usr/lib/postgresql/15/bin

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")
# The standby cluster's members: PostgreSQL and REST ports next to the primary cluster's.
SB_PG=$((PG + 10)) SB_REST=$((REST + 10))
for port in $SB_PG $((SB_PG + 1)) $SB_REST $((SB_REST + 1)); do port_free "$port" || fail "port $port is taken"; done

step "the primary cluster (etcd $ETCD, PostgreSQL $PG, write $WRITE)"
up_and_settle
sql "$WRITE" "CREATE TABLE standby_test(id int); INSERT INTO standby_test VALUES (1)" >/dev/null ||
  fail "create standby_test"

# Member i of the standby cluster (scope pg-ha-standby), Patroni's keys only.
write_standby_config() {
  local i=$1 dir=$WORK/sb-$1
  install -d -o postgres -g postgres -m 0700 "$dir"
  cat >"$dir/patroni.yml" <<EOF
scope: pg-ha-standby
namespace: /service/
name: sb-$i
restapi:
  listen: 127.0.0.1:$((SB_REST + i))
  connect_address: 127.0.0.1:$((SB_REST + i))
  authentication:
    username: '$RESTAPI_USER'
    password: '$RESTAPI_PASSWORD'
etcd3:
  hosts: 127.0.0.1:$ETCD,127.0.0.1:$((ETCD + 100)),127.0.0.1:$((ETCD + 200))
bootstrap:
  dcs:
    ttl: 6
    loop_wait: 1
    retry_timeout: 2
    standby_cluster:
      host: 127.0.0.1
      port: $WRITE
      create_replica_methods: [basebackup]
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 100
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 128MB
        hot_standby: 'on'
postgresql:
  listen: 127.0.0.1:$((SB_PG + i))
  connect_address: 127.0.0.1:$((SB_PG + i))
  data_dir: $dir/data
  bin_dir: $PG_BIN
  pgpass: $dir/pgpass
  authentication:
    superuser: {username: '$POSTGRES_USER', password: '$POSTGRES_PASSWORD'}
    replication: {username: '$REPLICATION_USER', password: '$REPLICATION_PASSWORD'}
  pg_hba:
  - local all all peer
  - host replication $REPLICATION_USER 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
EOF
  chown postgres:postgres "$dir/patroni.yml"
  chmod 0600 "$dir/patroni.yml"
}
start_standby_node() {
  PGHA_LAUNCHED_BY=$PGHA_STATE_DIR setsid setpriv --reuid=postgres --regid=postgres --init-groups \
    env -u PGPASSWORD HOME=/var/lib/postgresql "$BIN/pgha" "$WORK/sb-$1/patroni.yml" \
    >>"$WORK/sb-$1.log" 2>&1 </dev/null &
  echo $! >"$WORK/sb-$1.pid"
}
stop_standby_node() {
  local pid
  pid=$(cat "$WORK/sb-$1.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  fail "sb-$1 did not stop within 60 s"
}
SB_CTL=("$BIN/pghactl" -c "$WORK/sb-0/patroni.yml")
role_of() {  # standby member -> its role in pghactl list
  "${SB_CTL[@]}" list -f json | /usr/bin/python3 -c '
import json, sys
print("".join(m["Role"] for m in json.load(sys.stdin) if m["Member"] == sys.argv[1]))' "$1"
}
rows_on() { sql "$1" "SELECT coalesce(max(id), 0) FROM standby_test"; }
# The walreceiver's state and the timeline it receives.
receiving() { sql "$1" "SELECT status || ':' || received_tli FROM pg_stat_wal_receiver"; }
streams() { [[ "$(receiving "$1")" == streaming:* ]]; }
timeline_of() { local r; r=$(receiving "$1"); echo "${r#*:}"; }

step "the standby cluster: sb-0 copies the primary cluster through $WRITE, sb-1 cascades from it"
for i in 0 1; do write_standby_config "$i"; done
start_standby_node 0
standby_leader_runs() { [ "$(role_of sb-0)" = "Standby Leader" ] && streams "$SB_PG"; }
eventually 90 "sb-0 is the standby leader" standby_leader_runs
start_standby_node 1
replica_streams() { [ "$(role_of sb-1)" = "Replica" ] && streams "$((SB_PG + 1))"; }
eventually 90 "sb-1 streams from sb-0" replica_streams
[ "$(code "http://127.0.0.1:$SB_REST/standby-leader")" = 200 ] || fail "sb-0's /standby-leader is not 200"
[ "$(code "http://127.0.0.1:$SB_REST/primary")" = 503 ] || fail "sb-0's /primary is not 503"
upstream=$(sql "$((SB_PG + 1))" "SELECT sender_port FROM pg_stat_wal_receiver")
[ "$upstream" = "$SB_PG" ] || fail "sb-1 streams from port $upstream, not from sb-0 ($SB_PG)"
has_row() { [ "$(rows_on "$1")" = "$2" ]; }
eventually 30 "sb-0 has row 1" has_row "$SB_PG" 1
eventually 30 "sb-1 has row 1" has_row "$((SB_PG + 1))" 1
sql "$SB_PG" "INSERT INTO standby_test VALUES (99)" >/dev/null && fail "the standby leader accepted a write"
sql "$WRITE" "INSERT INTO standby_test VALUES (2)" >/dev/null || fail "write 2"
eventually 30 "sb-1 has row 2" has_row "$((SB_PG + 1))" 2
timeline_before=$(timeline_of "$SB_PG")

step "kill -9 of the primary cluster's leader: the standby cluster follows the new primary"
leader=$(leader_now)
kill -9 "$(cat "$PGHA_STATE_DIR/run/$leader.pid")" "$(head -1 "$PGHA_STATE_DIR/$leader/data/postmaster.pid")"
killed_at=$SECONDS
write_three() { sql "$WRITE" "INSERT INTO standby_test VALUES (3)" >/dev/null; }
eventually 90 "a write to the new primary through $WRITE" write_three
echo "the primary cluster took writes again $((SECONDS - killed_at)) s after the kill; new leader $(leader_now)"
eventually 90 "sb-0 has row 3 from the new primary" has_row "$SB_PG" 3
eventually 60 "sb-1 has row 3 through sb-0" has_row "$((SB_PG + 1))" 3
echo "the standby cluster had row 3 $((SECONDS - killed_at)) s after the kill"
newer_timeline() { [ "$(timeline_of "$SB_PG")" -gt "$timeline_before" ]; }
eventually 60 "sb-0 moves to the new timeline" newer_timeline
standby_leader_runs || fail "sb-0 is $(role_of sb-0) ($(receiving "$SB_PG")) after the failover"
replica_streams || fail "sb-1 is $(role_of sb-1) ($(receiving "$((SB_PG + 1))")) after the failover"

step "the standby cluster stops cleanly"
stop_standby_node 1
stop_standby_node 0
echo "PASS"
