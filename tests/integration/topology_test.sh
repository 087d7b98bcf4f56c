#!/usr/bin/env bash
# The one-command topology (scripts/cluster.sh, what `make up` runs), end to end on ephemeral
# ports so it can run beside a topology brought up with `make up`:
#   up from nothing -> writes through the write port, reads from a replica through the read port
#   -> pgha-router routes to exactly 1 primary and 2 replicas -> bad REST requests get their 4xx and
#   the node stays healthy -> kill -9 of the primary node: writes come back, pghactl and Debian's
#   patronictl show the new leader -> `up` restarts only the dead node -> down/up keeps the data
#   -> a taken port or a missing binary fails fast and starts nothing -> clean removes the state.
# usage: topology_test.sh <directory holding pgha and pghactl>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")
require_tool patronictl "Debian's patroni package"
require_tool patroni "Debian's patroni package"

step "a missing binary fails fast and starts nothing"
out=$(PGHA_BIN_DIR=$WORK/nowhere "$CLUSTER" up 2>&1) && fail "up succeeded without binaries"
grep -q "missing: .*pgha" <<<"$out" || fail "unclear message: $out"
ours_running "$PGHA_STATE_DIR" && fail "processes started despite the missing binary"

step "up from nothing (etcd $ETCD, PostgreSQL $PG, REST $REST, write $WRITE, read $READ)"
start=$SECONDS
"$CLUSTER" up || fail "cluster.sh up failed"
echo "up took $((SECONDS - start)) s"
[ "$(stat -c %a "$PGHA_ENV_POSTGRES_FILE")" = 600 ] || fail ".env.postgres is not mode 0600"
set -a
. "$PGHA_ENV_POSTGRES_FILE"
set +a
[ "${#POSTGRES_PASSWORD}" -ge 24 ] || fail "generated password is weak"

step "writes through $WRITE reach the primary; reads through $READ come from a replica"
[ "$(sql "$WRITE" "SELECT pg_is_in_recovery()")" = f ] || fail "write port did not reach the primary"
sql "$WRITE" "CREATE TABLE topology_test(id int); INSERT INTO topology_test VALUES (1), (2), (3)" >/dev/null ||
  fail "write through the write port failed"
replica_sees_rows() { [ "$(sql "$READ" "SELECT pg_is_in_recovery() || ':' || count(*) FROM topology_test")" = "true:3" ]; }
eventually 30 "a replica behind the read port sees the rows" replica_sees_rows
sql "$READ" "INSERT INTO topology_test VALUES (4)" >/dev/null && fail "the read port accepted a write"

step "pgha-router: one member for writes, two for reads; status page, /health, /metrics"
curl -s "http://127.0.0.1:$STATS/metrics" >"$WORK/router-metrics" || fail "the router's /metrics does not answer"
[ "$(grep -c '^pgha_router_primary{' "$WORK/router-metrics")" = 1 ] || fail "write target: $(grep primary "$WORK/router-metrics")"
[ "$(grep -c '^pgha_router_replica{' "$WORK/router-metrics")" = 2 ] || fail "read targets: $(grep replica "$WORK/router-metrics")"
promtool check metrics <"$WORK/router-metrics" || fail "promtool rejects the router's /metrics"
curl -s "http://127.0.0.1:$STATS/" | has "<h1>pgha-router</h1>" || fail "no status page on $STATS"
[ "$(code "http://127.0.0.1:$STATS/health")" = 200 ] || fail "/health is not 200"

step "pgha-exporter beside each node (ports $EXPORTER..$((EXPORTER + 2))) reaches its PostgreSQL"
for i in 0 1 2; do
  curl -s "http://127.0.0.1:$((EXPORTER + i))/metrics" >"$WORK/exporter-$i" || fail "exporter-$i does not answer"
  has -x 'pg_up 1' <"$WORK/exporter-$i" || fail "exporter-$i: pg_up is not 1"
done
# The primary's exporter sees both replicas stream; each replica's says it is one.
cat "$WORK"/exporter-* >"$WORK/exporters"
[ "$(grep -c '^pg_stat_replication_pg_wal_lsn_diff{.*state="streaming"' "$WORK/exporters")" = 2 ] ||
  fail "the exporters do not show two streaming replicas: $(grep '^pg_stat_replication' "$WORK/exporters")"
[ "$(grep -c '^pg_replication_is_replica{.*} 1$' "$WORK/exporters")" = 2 ] || fail "not two replicas by pg_replication_is_replica"

step "Prometheus (port $PROM) scrapes every agent, exporter, the router and etcd, with the alert rules loaded"
targets_up() {
  curl -s -m 5 "http://127.0.0.1:$PROM/api/v1/targets" | /usr/bin/python3 -c '
import json, sys
active = json.load(sys.stdin)["data"]["activeTargets"]
jobs = sorted(t["labels"]["job"] for t in active if t["health"] == "up")
sys.exit(0 if jobs == ["etcd"] * 3 + ["pgha"] * 3 + ["postgres"] * 3 + ["router"] else 1)'
}
eventually 60 "all 10 Prometheus targets up" targets_up
curl -s "http://127.0.0.1:$PROM/api/v1/rules" | has '"name":"PghaMoreThanOnePrimary"' ||
  fail "Prometheus did not load the alert rules"
prom_primaries() {
  [ "$(curl -s "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode 'query=sum(patroni_primary)' |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")')" = 1 ]
}
eventually 30 "Prometheus sees exactly one primary" prom_primaries

step "pghactl's read-only verbs, and the same table as Debian's patronictl"
leader_port=$(sql "$WRITE" "SELECT inet_server_port()")
[ "$("${CTL[@]}" dsn)" = "host=127.0.0.1 port=$leader_port" ] || fail "pghactl dsn: $("${CTL[@]}" dsn)"
[ "$(printf '%s\n' "$POSTGRES_PASSWORD" | "${CTL[@]}" query -U postgres --password -c 'SELECT pg_is_in_recovery() AS r' 2>/dev/null)" = "$(printf 'r\nf')" ] ||
  fail "pghactl query on the leader"
[ "$(printf '%s\n' "$POSTGRES_PASSWORD" | "${CTL[@]}" query -r replica -U postgres --password -c 'SELECT pg_is_in_recovery()' 2>/dev/null | tail -1)" = t ] ||
  fail "pghactl query -r replica"
"${CTL[@]}" show-config | has -x 'ttl: 6' || fail "pghactl show-config"
[ "$("${CTL[@]}" topology | grep -c '| + pg-')" = 2 ] || fail "pghactl topology: $("${CTL[@]}" topology)"
"${CTL[@]}" history -f json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []' || fail "pghactl history"
"$BIN/pghactl" --dcs-url "etcd3://127.0.0.1:$ETCD" list pg-ha | has "| Leader " || fail "pghactl --dcs-url"
out=$("$BIN/pghactl" -c "$WORK/missing.yml" list 2>&1) && fail "pghactl succeeded with a missing -c file"
grep -q "not existing" <<<"$out" || fail "pghactl with a missing -c file: $out"
same_table() { [ "$("${CTL[@]}" list)" = "$(patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" list)" ]; }
eventually 30 "pghactl list and patronictl list print the same table" same_table

step "edit-config: a reloadable parameter reaches every node, a restart-requiring one is pending until restart"
"${CTL[@]}" edit-config -p work_mem=9MB -s maximum_lag_on_failover=2097152 --force >/dev/null ||
  fail "pghactl edit-config"
all_reloaded() {
  local i
  for i in 0 1 2; do [ "$(sql "$((PG + i))" "SHOW work_mem")" = 9MB ] || return 1; done
}
eventually 30 "work_mem=9MB on every node" all_reloaded
out=$("${CTL[@]}" edit-config -s loop_wait=abc --force 2>&1) && fail "a loop_wait that is no number was accepted"
grep -q "loop_wait: '\"abc\"' is not a number" <<<"$out" || fail "the refusal does not name the key: $out"
"${CTL[@]}" edit-config -p max_connections=120 --force >/dev/null || fail "edit-config max_connections"
all_pending() { [ "$("${CTL[@]}" list -f json | grep -o '"Pending restart": "\*"' | wc -l)" = 3 ]; }
eventually 30 "pending restart shown for all three members" all_pending
curl -s "http://127.0.0.1:$REST/patroni" | has '"pending_restart": *true' ||
  fail "/patroni does not show pending_restart"
out=$("${CTL[@]}" restart pg-ha --pending --force) || fail "pghactl restart --pending: $out"
[ "$(grep -c '^Success: restart on member' <<<"$out")" = 3 ] || fail "pghactl restart: $out"
none_pending() { ! "${CTL[@]}" list -f json | has 'Pending restart'; }
eventually 30 "pending restart cleared by the restart" none_pending
[ "$(sql "$((PG + 1))" "SHOW max_connections")" = 120 ] || fail "max_connections not applied by restart"
out=$("${CTL[@]}" restart pg-ha -r replica --pg-version 9.6.1 --force) && fail "restart ran despite --pg-version"
grep -q "restart conditions are not satisfied" <<<"$out" || fail "unclear refusal: $out"
out=$(patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" restart pg-ha pg-2 --force) ||
  fail "patronictl restart: $out"
grep -q "Success: restart on member pg-2" <<<"$out" || fail "patronictl restart: $out"
eventually 30 "pg-2 accepts queries after its restart" sql "$((PG + 2))" "SELECT 1"

step "reinit: a replica is cloned again (pghactl and patronictl); the leader refuses"
reinit_leader=$(for i in 0 1 2; do [ "$(code "http://127.0.0.1:$((REST + i))/leader")" != 200 ] || echo "pg-$i"; done)
reinit_replicas=($(for n in pg-0 pg-1 pg-2; do [ "$n" = "$reinit_leader" ] || echo "$n"; done))
out=$("${CTL[@]}" reinit pg-ha "$reinit_leader" --force) && fail "the leader accepted reinit"
grep -q "I am the leader, can not reinitialize" <<<"$out" || fail "unclear refusal: $out"
out=$("${CTL[@]}" reinit pg-ha "${reinit_replicas[0]}" --force --wait) || fail "pghactl reinit: $out"
grep -q "Reinitialize is completed on: ${reinit_replicas[0]}" <<<"$out" || fail "pghactl reinit: $out"
grep -q "reinitialize finished" "$PGHA_STATE_DIR/log/${reinit_replicas[0]}.log" ||
  fail "${reinit_replicas[0]} did not reinitialize"
replica_port=$((PG + ${reinit_replicas[0]#pg-}))
has_rows() { [ "$(sql "$replica_port" "SELECT count(*) FROM topology_test")" = 3 ]; }
eventually 60 "the reinitialized replica has the rows" has_rows
out=$(patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" reinit pg-ha "${reinit_replicas[1]}" --force --wait) ||
  fail "patronictl reinit: $out"
grep -q "Success: reinitialize for member ${reinit_replicas[1]}" <<<"$out" || fail "patronictl reinit: $out"

step "pause (pghactl and patronictl): a dead primary postmaster is not replaced; resume restarts it"
"${CTL[@]}" pause --wait >/dev/null || fail "pghactl pause"
"${CTL[@]}" list | has "Maintenance mode: on" || fail "list does not show maintenance mode"
curl -s "http://127.0.0.1:$REST/patroni" | has '"pause": *true' || fail "/patroni does not show pause"
out=$("${CTL[@]}" pause 2>&1) && fail "pausing twice succeeded"
grep -q "already paused" <<<"$out" || fail "second pause: $out"
paused_leader=$(for i in 0 1 2; do [ "$(code "http://127.0.0.1:$((REST + i))/leader")" != 200 ] || echo "pg-$i"; done)
[ -n "$paused_leader" ] || fail "no leader before the paused crash"
kill -9 "$(head -1 "$PGHA_STATE_DIR/$paused_leader/data/postmaster.pid")"
sleep 10  # ttl 6: unpaused, a replica would have been promoted by now
for i in 0 1 2; do
  [ "$(code -X OPTIONS "http://127.0.0.1:$((REST + i))/primary")" = 503 ] || fail "pg-$i was promoted while paused"
done
"${CTL[@]}" list -f json | has "\"Member\": \"$paused_leader\", [^}]*\"Role\": \"Leader\"" ||
  fail "the leader lost its lock while paused"
patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" resume --wait >/dev/null || fail "patronictl resume"
patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" pause --wait >/dev/null || fail "patronictl pause"
"${CTL[@]}" resume --wait >/dev/null || fail "pghactl resume"
write_back() { sql "$WRITE" "SELECT 1" >/dev/null; }
eventually 60 "the primary restarted after resume" write_back

step "bad REST requests get their 4xx and leave the node healthy"
api=http://127.0.0.1:$REST
auth=(-u "$RESTAPI_USER:$RESTAPI_PASSWORD")
[ "$(code -X POST -d '{"leader": "pg-0"}' "$api/switchover")" = 401 ] || fail "no credentials must be 401"
[ "$(code -X POST -u "$RESTAPI_USER:wrong" -d '{"leader": "pg-0"}' "$api/switchover")" = 401 ] ||
  fail "wrong credentials must be 401"
[ "$(code -X POST "${auth[@]}" -d '{not json' "$api/switchover")" = 400 ] || fail "bad JSON must be 400"
[ "$(code -X POST "${auth[@]}" -d '[1]' "$api/switchover")" = 400 ] || fail "a non-object must be 400"
[ "$(head -c 3000000 /dev/zero | tr '\0' 'x' | code -X POST "${auth[@]}" --data-binary @- "$api/switchover")" = 413 ] ||
  fail "a 3 MB body must be 413"
[ "$(code -X POST -d '{}' "$api/no-such-endpoint")" = 501 ] || fail "unknown POST endpoint must be 501"
[ "$(code "$api/no-such-endpoint")" = 503 ] || fail "unknown GET path must be 503 (as Patroni)"
body=$(curl -s -X POST "${auth[@]}" -d '{bad' "$api/switchover")
[ "$body" = "the body is not valid JSON" ] || fail "errors must be Patroni's plain text: $body"
printf 'GARBAGE\r\n\r\n' | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$REST" || true
[ "$(code "$api/health")" = 200 ] || fail "node unhealthy after bad requests"
[ "$(curl -s "$api/cluster" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" = 3 ] ||
  fail "/cluster does not list 3 members"
[ "$(code "$api/history")" = 200 ] && [ "$(code "$api/config")" = 200 ] || fail "/history or /config failed"

step "the generated patroni.yml files pass Patroni's own validator (but for the loopback addresses)"
problems=$(patroni --validate-config "$PGHA_STATE_DIR/config/pg-1.yml" 2>&1 |
  grep -v -e 'must not contain "127.0.0.1"' -e 'is already in use' || true)
[ -z "$problems" ] || fail "Patroni's validator: $problems"

step "up on a running topology starts nothing"
before=$(pids)
out=$("$CLUSTER" up 2>&1) || fail "second up failed: $out"
grep -q "Everything is already running" <<<"$out" || fail "second up did not say so: $out"
[ "$(pids)" = "$before" ] || fail "second up restarted something"

step "kill -9 of the primary node: writes through $WRITE come back"
leader=""
for i in 0 1 2; do
  [ "$(code -X OPTIONS "http://127.0.0.1:$((REST + i))/primary")" = 200 ] && leader=pg-$i
done
[ -n "$leader" ] || fail "no primary"
kill -9 "$(cat "$PGHA_STATE_DIR/run/$leader.pid")" "$(head -1 "$PGHA_STATE_DIR/$leader/data/postmaster.pid")"
killed_at=$SECONDS
write_works() { sql "$WRITE" "INSERT INTO topology_test VALUES (5)" >/dev/null; }
eventually 120 "writes through the write port after the primary died" write_works
echo "writes back through pgha-router $((SECONDS - killed_at)) s after kill -9"
# The dead node's alerts fire in the topology's Prometheus: its agent is down (PghaNodeDown) and
# its exporter, still running, reports its PostgreSQL down (PostgresDown).
firing() {  # alertname instance-port
  curl -s -m 5 "http://127.0.0.1:$PROM/api/v1/alerts" | /usr/bin/python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
sys.exit(0 if any(a["labels"]["alertname"] == sys.argv[1] and a["state"] == "firing"
                  and a["labels"]["instance"].endswith(":" + sys.argv[2]) for a in alerts) else 1)' "$1" "$2"
}
dead=${leader#pg-}
eventually 90 "PghaNodeDown firing for $leader" firing PghaNodeDown "$((REST + dead))"
eventually 30 "PostgresDown firing for $leader's exporter" firing PostgresDown "$((EXPORTER + dead))"
echo "alerts PghaNodeDown and PostgresDown firing $((SECONDS - killed_at)) s after kill -9 (rules: for 30s)"
new_leader=$("${CTL[@]}" list -f json | python3 -c 'import json,sys; print([m["Member"] for m in json.load(sys.stdin) if m["Role"] == "Leader"][0])')
[ "$new_leader" != "$leader" ] || fail "pghactl still shows $leader as leader"
"${CTL[@]}" list
patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml" list | grep -E "\| $new_leader +\|.*\| Leader " ||
  fail "patronictl does not show $new_leader as leader"

step "up starts only the dead node, which rejoins as a replica"
survivors=$(for n in pg-0 pg-1 pg-2 etcd-1 etcd-2 etcd-3 router exporter-0 exporter-1 exporter-2 prometheus; do [ "$n" = "$leader" ] || cat "$PGHA_STATE_DIR/run/$n.pid"; done | sort | tr '\n' ' ')
"$CLUSTER" up >/dev/null || fail "up after the crash failed"
still=$(for n in pg-0 pg-1 pg-2 etcd-1 etcd-2 etcd-3 router exporter-0 exporter-1 exporter-2 prometheus; do [ "$n" = "$leader" ] || cat "$PGHA_STATE_DIR/run/$n.pid"; done | sort | tr '\n' ' ')
[ "$survivors" = "$still" ] || fail "up restarted running components"
"${CTL[@]}" list -f json | has "\"Member\": \"$leader\", \"Host\": \"[^\"]*\", \"Role\": \"Replica\", \"State\": \"running\"" ||
  fail "$leader did not rejoin as a running replica"

step "down stops everything; up brings the same data back"
"$CLUSTER" down || fail "down failed"
ours_running "$PGHA_STATE_DIR" && fail "processes left after down: $(pgrep -af "$PGHA_STATE_DIR/")"
"$CLUSTER" up >/dev/null || fail "up after down failed"
rows=$(sql "$WRITE" "SELECT count(*) FROM topology_test") || true
# Rows 1-3 before the failover, 5 after it (the read port refused row 4).
[ "$rows" = 4 ] || fail "data lost across down/up: $rows rows, expected 4"

step "a taken port fails fast and starts nothing"
pick_ports
python3 -m http.server --bind 127.0.0.1 "$((PG + 1))" >/dev/null 2>&1 &
LISTENER_PID=$!
eventually 10 "the blocking listener" bash -c "ss -Htln 'sport = :$((PG + 1))' | grep -q ."
write_env "$WORK/env2" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
out=$(PGHA_STATE_DIR=$WORK/state2 PGHA_ENV_FILE=$WORK/env2 "$CLUSTER" up 2>&1) && fail "up succeeded on a taken port"
grep -q "port(s) already taken: $((PG + 1))" <<<"$out" || fail "unclear message: $out"
ours_running "$WORK/state2" && fail "processes started despite the taken port"
kill "$LISTENER_PID"
LISTENER_PID=""

step "clean removes the state"
"$CLUSTER" clean >/dev/null || fail "clean failed"
[ ! -e "$PGHA_STATE_DIR" ] || fail "state directory still there"
ours_running "$PGHA_STATE_DIR" && fail "processes left after clean"
echo "PASS"
