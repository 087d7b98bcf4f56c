#!/usr/bin/env bash
# pgha-router in the `make up` topology (real etcd, real PostgreSQL, pgha nodes), on ephemeral
# ports:
#   reads through the read port reach both replicas -> a switchover while clients connect, insert
#   and disconnect in a loop through the write port: 0 failed transactions, none lost -> kill -9
#   of the primary node under that load: writes land on the new primary -> a killed replica
#   leaves the read port at once and no read fails -> etcd frozen (SIGSTOP, failsafe_mode on):
#   writes through the write port keep working -> a second router with maxconn 5: garbage,
#   silent and surplus clients get errors and break nothing; SIGHUP raises maxconn with open
#   connections kept; SIGTERM drains.
# usage: router_test.sh <directory holding pgha, pghactl and pgha-router>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
SUPPORT=$REPO/tests/integration/support
PY=/usr/bin/python3  # Debian's python, with psycopg2

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")

step "up (etcd $ETCD, PostgreSQL $PG, REST $REST, router write $WRITE read $READ stats $STATS)"
up_and_settle
sql "$WRITE" "CREATE TABLE load_test(id bigint PRIMARY KEY)" >/dev/null || fail "create table through $WRITE"

metric() {  # name{labels} -> value from the router's /metrics, empty when absent
  curl -s -m 2 "http://127.0.0.1:$STATS/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
port_of() { echo $((PG + ${1#pg-})); }

step "reads through $READ reach both replicas, never the primary"
leader=$(leader_now)
ports=$(for i in $(seq 1 12); do sql "$READ" "SELECT inet_server_port()"; done | sort -u | tr '\n' ' ')
expected=$(for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || port_of "$n"; done | sort | tr '\n' ' ')
[ "$ports" = "$expected" ] || fail "reads reached ports '$ports', expected the replicas '$expected'"

# Starts the connect-insert-disconnect load (4 clients) through the write port.
start_load() {
  rm -f "$WORK/stop"
  $PY "$SUPPORT/connect_load.py" "$WRITE" "$WORK/stop" --clients 4 --acked "$WORK/acked-$1" \
    >"$WORK/load-$1.json" 2>"$WORK/load-$1.err" &
  LOAD_PID=$!
}
stop_load() {
  touch "$WORK/stop"
  wait "$LOAD_PID" || fail "the load client failed: $(cat "$WORK/load-$1.err")"
  cat "$WORK/load-$1.json"
}
field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/load-$1.json" "$2"; }
# Every acknowledged id is on the primary.
lost_ids() { $PY "$SUPPORT/lost_ids.py" "$WORK/acked-$1" "$WRITE" | cut -d" " -f2; }

step "switchover while 4 clients connect, insert and disconnect in a loop through $WRITE"
start_load switchover
sleep 3
candidate=$(for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || echo "$n"; done | head -1)
"${CTL[@]}" switchover pg-ha --leader "$leader" --candidate "$candidate" --force >/dev/null ||
  fail "switchover to $candidate"
eventually 60 "$candidate leads with two streaming replicas" settled
leader_is "$candidate" || fail "the leader is $(leader_now), not $candidate"
sleep 2
stop_load switchover
[ "$(field switchover failed)" = 0 ] || fail "transactions failed across the switchover: $(cat "$WORK/load-switchover.json")"
[ "$(field switchover acked)" -gt 20 ] || fail "too few transactions: $(cat "$WORK/load-switchover.json")"
[ "$(lost_ids switchover)" = 0 ] || fail "acknowledged rows missing after the switchover"
echo "switchover: $(field switchover acked) transactions, 0 failed, longest stall $(field switchover longest_stall_s) s;" \
  "held clients $(metric 'pgha_router_connections_held_total{listener="write"}')"
[ "$(sql "$WRITE" "SELECT inet_server_port()")" = "$(port_of "$candidate")" ] || fail "writes do not reach $candidate"
# The old leader told the router before it stopped PostgreSQL, and waited for its acknowledgement
# (model/handover_notice.h).
grep -q "acknowledged the leader's handover notice" "$PGHA_STATE_DIR/log/router.log" ||
  fail "the router did not acknowledge the leader's handover notice"
grep -q "router(s) acknowledged the handover notice within" "$PGHA_STATE_DIR/log/$leader.log" ||
  fail "$leader did not see the router's acknowledgement: $(grep -i 'router' "$PGHA_STATE_DIR/log/$leader.log" | tail -3)"
[ "$(metric pgha_router_handover_notices_acknowledged_total)" -ge 1 ] ||
  fail "the router counts no acknowledged notice"
grep "router(s) acknowledged the handover notice within" "$PGHA_STATE_DIR/log/$leader.log" | tail -1

step "kill -9 of the primary node under the same load: writes land on the new primary"
leader=$candidate
start_load crash
sleep 2
kill -9 "$(cat "$PGHA_STATE_DIR/run/$leader.pid")" "$(head -1 "$PGHA_STATE_DIR/$leader/data/postmaster.pid")"
killed_at=$SECONDS
new_primary() {
  local now
  now=$(leader_now) || return 1
  [ -n "$now" ] && [ "$now" != "$leader" ] &&
    [ "$(sql "$WRITE" "SELECT inet_server_port()")" = "$(port_of "$now")" ]
}
eventually 60 "the write port reaches a new primary" new_primary
sleep 2
stop_load crash
acked_after=$($PY -c 'import sys; print(sum(1 for l in open(sys.argv[1]) if l.strip()))' "$WORK/acked-crash")
[ "$acked_after" -gt 0 ] || fail "no write acknowledged"
# A transaction under way when the postmaster died fails (one per client at most); logins in
# progress are replayed to the new primary by the router and do not fail.
[ "$(field crash failed)" -le 4 ] || fail "more failures than clients: $(cat "$WORK/load-crash.json")"
echo "kill -9: writes on $(leader_now) $((SECONDS - killed_at)) s after the kill (ttl 6);" \
  "$(field crash failed) transactions failed (in flight at the crash), longest stall $(field crash longest_stall_s) s"
"$CLUSTER" up >"$WORK/up-crash.log" 2>&1 || fail "cluster.sh up after the crash: $(tail -5 "$WORK/up-crash.log")"
eventually 90 "the cluster settles after the crash" settled

step "a killed replica leaves $READ at once; no read fails meanwhile"
leader=$(leader_now)
victim=$(for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || echo "$n"; done | head -1)
[ "$(metric "pgha_router_replica{member=\"$victim\"}")" = 1 ] || fail "$victim is not a read target before the kill"
kill -9 "$(cat "$PGHA_STATE_DIR/run/$victim.pid")" "$(head -1 "$PGHA_STATE_DIR/$victim/data/postmaster.pid")"
start_ms=$(date +%s%3N)
gone_ms=""
failed_reads=0
reads=0
while [ $(($(date +%s%3N) - start_ms)) -lt 3000 ]; do
  if [ -z "$gone_ms" ] && [ -z "$(metric "pgha_router_replica{member=\"$victim\"}")" ]; then
    gone_ms=$(($(date +%s%3N) - start_ms))
  fi
  sql "$READ" "SELECT 1" >/dev/null || failed_reads=$((failed_reads + 1))
  reads=$((reads + 1))
done
[ -n "$gone_ms" ] || fail "$victim still a read target 3 s after its kill"
[ "$failed_reads" = 0 ] || fail "$failed_reads of $reads reads through $READ failed after the kill"
echo "$victim left the read port $gone_ms ms after kill -9; $reads reads, none failed"
[ "$gone_ms" -le 1000 ] || fail "$victim left the read port only after $gone_ms ms"
"$CLUSTER" up >"$WORK/up-replica.log" 2>&1 || fail "cluster.sh up after the replica kill: $(tail -5 "$WORK/up-replica.log")"
eventually 90 "the cluster settles after the replica's return" settled

step "etcd frozen (SIGSTOP, failsafe_mode on): writes through $WRITE keep working"
"${CTL[@]}" edit-config pg-ha -s failsafe_mode=true --force >/dev/null || fail "edit-config failsafe_mode"
failsafe_on() { curl -s -m 2 "http://127.0.0.1:$((REST + ${leader#pg-}))/config" | has '"failsafe_mode": *true'; }
eventually 20 "failsafe_mode in the dynamic configuration" failsafe_on
sleep 2  # every member has posted its /failsafe confirmation at least once
etcd_pids=$(cat "$PGHA_STATE_DIR"/run/etcd-*.pid)
# shellcheck disable=SC2086
kill -STOP $etcd_pids
frozen_at=$SECONDS
writes=0
failed_writes=0
while [ $((SECONDS - frozen_at)) -lt 10 ]; do
  sql "$WRITE" "INSERT INTO load_test VALUES ($((900000000000 + writes)))" >/dev/null || failed_writes=$((failed_writes + 1))
  writes=$((writes + 1))
  sleep 0.5
done
reachable_while_frozen=$(metric pgha_router_etcd_reachable)
# shellcheck disable=SC2086
kill -CONT $etcd_pids
[ "$failed_writes" = 0 ] || fail "$failed_writes of $writes writes failed while etcd was frozen"
[ "$reachable_while_frozen" = 0 ] || fail "the router did not notice etcd frozen"
etcd_back() { [ "$(metric pgha_router_etcd_reachable)" = 1 ]; }
eventually 30 "the router sees etcd again" etcd_back
echo "etcd frozen 10 s (ttl 6): $writes writes through the router, none failed"
"${CTL[@]}" edit-config pg-ha -s failsafe_mode=false --force >/dev/null || fail "edit-config failsafe_mode off"

step "a second router (maxconn 5): garbage, silent and surplus clients; SIGHUP; SIGTERM drains"
pick_free() {
  local p
  for p in $(seq $((WRITE + 20)) $((WRITE + 200))); do port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)) && { echo "$p"; return; }; done
  fail "no free ports for the second router"
}
W2=$(pick_free)
R2=$((W2 + 1))
S2=$((W2 + 2))
conf=$WORK/router2.yml
write_router2_conf() {  # maxconn
  { cat "$PGHA_STATE_DIR/config/pg-0.yml"
    printf 'router:\n  write_listen: 127.0.0.1:%s\n  read_listen: 127.0.0.1:%s\n  stats_listen: 127.0.0.1:%s\n  maxconn: %s\n  connect_hold_timeout: 3s\n  drain_timeout: 20s\n' \
      "$W2" "$R2" "$S2" "$1"
  } >"$conf.new"
  mv "$conf.new" "$conf"
}
write_router2_conf 5
"$BIN/pgha-router" --validate-config "$conf" >/dev/null || fail "the second router's configuration is refused"
"$BIN/pgha-router" "$conf" >"$WORK/router2.log" 2>&1 &
ROUTER2=$!
router2_ready() { [ "$(curl -s -m 2 "http://127.0.0.1:$S2/metrics" | grep -c '^pgha_router_primary{')" = 1 ]; }
eventually 20 "the second router has a primary" router2_ready
# Garbage on both ports, then silent clients and a half-sent startup.
$PY - "$W2" "$R2" <<'EOF' || fail "garbage clients"
import os, socket, sys
for port in map(int, sys.argv[1:]):
    for size in (1, 7, 8, 64, 5000):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(os.urandom(size))
        s.settimeout(5)
        try:
            s.recv(1000)
        except OSError:
            pass
        s.close()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: router\r\n\r\n")
    s.settimeout(5)
    reply = s.recv(1000)
    assert b"invalid startup packet" in reply, reply
    s.close()
EOF
kill -0 "$ROUTER2" || fail "the second router died of garbage: $(tail -5 "$WORK/router2.log")"
# Five sessions fill maxconn; the sixth gets a clear error; a SIGHUP raising maxconn lets it in
# while the five stay open and usable.
$PY - "$W2" "$ROUTER2" "$conf" <<'EOF' || fail "maxconn and reload"
import os, signal, sys, time
import psycopg2
port, pid, conf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def connect():
    return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=10)
held = [connect() for _ in range(5)]
try:
    connect()
    raise SystemExit("a sixth connection was accepted with maxconn 5")
except psycopg2.OperationalError as error:
    assert "too many connections on the write port (maxconn 5)" in str(error), str(error)
text = open(conf).read().replace("maxconn: 5", "maxconn: 50")
open(conf + ".new", "w").write(text)
os.rename(conf + ".new", conf)
os.kill(pid, signal.SIGHUP)
time.sleep(1)
extra = connect()
for c in held + [extra]:
    with c.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
print("maxconn 5 refused the sixth; after SIGHUP (maxconn 50) it got in, the five kept working")
EOF
grep -q "settings reloaded; open connections kept" "$WORK/router2.log" || fail "no reload in the second router's log"
# SIGTERM with a session open: the session keeps working, new clients are turned away, and the
# router exits when the session ends.
$PY - "$W2" "$ROUTER2" <<'EOF' || fail "drain on SIGTERM"
import os, signal, time
import sys
import psycopg2
port, pid = int(sys.argv[1]), int(sys.argv[2])
session = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
with session.cursor() as cur:
    cur.execute("SELECT 2")
    assert cur.fetchone() == (2,)
try:
    psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3)
    raise SystemExit("a new client was accepted while draining")
except psycopg2.OperationalError:
    pass
session.close()
print("draining: the open session worked, a new one was refused")
EOF
for _ in $(seq 1 50); do kill -0 "$ROUTER2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$ROUTER2" 2>/dev/null && fail "the second router did not exit after its last session"
wait "$ROUTER2" || fail "the second router exited with an error: $(tail -5 "$WORK/router2.log")"
grep -q "pgha-router stopped" "$WORK/router2.log" || fail "no clean stop in the second router's log"

step "the router's /metrics: what the alert rules and the dashboard ask of it is there"
curl -s "http://127.0.0.1:$STATS/metrics" >"$WORK/router-metrics"
promtool check metrics <"$WORK/router-metrics" || fail "promtool rejects the router's /metrics"
$PY - "$WORK/router-metrics" "$REPO/deploy/grafana/pgha-cluster.json" "$REPO/deploy/prometheus/pgha-rules.yml" <<'EOF' ||
import json, re, sys
exposed = {line.split("{")[0].split(" ")[0] for line in open(sys.argv[1]) if line[:1].isalpha()}
texts = [t["expr"] for p in json.load(open(sys.argv[2]))["panels"] for t in p["targets"]]
texts.append(open(sys.argv[3]).read())
wanted = {m for t in texts for m in re.findall(r"\bpgha_router_[a-z_]+\b", t)}
missing = sorted(wanted - exposed)
if not wanted:
    sys.exit("the rules ask nothing of the router")
sys.exit("not exposed: " + " ".join(missing) if missing else 0)
EOF
  fail "the rules or the dashboard query router metrics it does not expose"

step "the router's own log and counters"
[ "$(metric 'pgha_router_retargets_total')" -ge 2 ] || fail "fewer than two re-targets counted"
grep -c "write port -> " "$PGHA_STATE_DIR/log/router.log" >/dev/null || fail "no re-target in the router's log"
echo "apply delay (etcd event -> routes applied): $(metric pgha_router_apply_delay_seconds_sum) s over" \
  "$(metric pgha_router_apply_delay_seconds_count) changes"
echo "PASS"
