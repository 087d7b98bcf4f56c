#!/usr/bin/env bash
# pgha-router's session mode (`mode: session` on the write port) in the `make up` topology (real
# etcd, real PostgreSQL 15, pgha nodes), beside the topology's own L4 router, on ephemeral ports:
#   the router logs clients in with SCRAM against the verifiers the primary holds (a wrong
#   password and an unknown role refused as PostgreSQL refuses them) -> a cancel request reaches
#   the session's backend -> pgbench -c 8 -j 2 -T 40 with a switchover in the middle: no failed
#   transaction, no aborted client, every committed row there -> pooled psycopg2 clients in a
#   transaction loop through a switchover: no error; a session holding a temporary table is
#   closed with 57P01 -> kill -9 of the primary: idle sessions carry on on the new primary, a
#   session inside a transaction gets an error for it and carries on.
# usage: session_mode_test.sh <directory holding pgha, pghactl and pgha-router>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
SUPPORT=$REPO/tests/integration/support
PY=/usr/bin/python3  # Debian's python, with psycopg2
PGBENCH=/usr/lib/postgresql/15/bin/pgbench

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")

step "up (etcd $ETCD, PostgreSQL $PG, REST $REST, L4 router write $WRITE)"
up_and_settle

pick_free() {
  local p
  for p in $(seq $((WRITE + 20)) $((WRITE + 200))); do port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)) && { echo "$p"; return; }; done
  fail "no free ports for the session-mode router"
}
SW=$(pick_free)
conf=$WORK/session-router.yml
# A self-signed certificate: the router terminates clients' TLS with it (libpq's default
# sslmode=prefer takes it, so every client below but the first two goes through TLS).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgha-router" \
  -keyout "$WORK/router.key" -out "$WORK/router.crt" >/dev/null 2>&1 || fail "openssl req"
{ cat "$PGHA_STATE_DIR/config/pg-0.yml"
  printf 'router:\n  name: session-router\n  mode: session\n  write_listen: 127.0.0.1:%s\n  read_listen: 127.0.0.1:%s\n  stats_listen: 127.0.0.1:%s\n  connect_hold_timeout: 30s\n  pause_timeout: 5s\n  tls_certificate: %s\n  tls_key: %s\n' \
    "$SW" $((SW + 1)) $((SW + 2)) "$WORK/router.crt" "$WORK/router.key"
} >"$conf"
"$BIN/pgha-router" --validate-config "$conf" >/dev/null || fail "the session-mode configuration is refused"
"$BIN/pgha-router" "$conf" >"$WORK/session-router.log" 2>&1 &
ROUTER=$!
metric() {  # name{labels} -> value from the session router's /metrics
  curl -s -m 2 "http://127.0.0.1:$((SW + 2))/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
router_ready() { [ "$(curl -s -m 2 "http://127.0.0.1:$((SW + 2))/metrics" | grep -c '^pgha_router_primary{')" = 1 ]; }
eventually 20 "the session-mode router has a primary" router_ready
port_of() { echo $((PG + ${1#pg-})); }
# A switchover away from the leader (SWITCHED_TO: the new one). Under load a replica may lag past
# maximum_lag_on_failover for a moment and be refused: then the other one, or the same again.
switch_over() {
  local leader out attempt
  leader=$(leader_now)
  for attempt in $(seq 0 39); do
    SWITCHED_TO=$(for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || echo "$n"; done | sed -n "$((attempt % 2 + 1))p")
    out=$("${CTL[@]}" switchover pg-ha --leader "$leader" --candidate "$SWITCHED_TO" --force 2>&1) && return 0
    grep -q lagging <<<"$out" || fail "switchover to $SWITCHED_TO: $out"
    sleep 0.25
  done
  fail "switchover: every candidate lagged: $out"
}

step "SCRAM logins through the session port $SW"
out=$(PGSSLMODE=disable psql -h 127.0.0.1 -p "$SW" -U postgres -d postgres -Atqc "SELECT 1" 2>&1 || true)
[ "$out" = 1 ] || fail "a login with the right password failed: $out; router: $(tail -5 "$WORK/session-router.log")"
out=$(PGSSLMODE=require psql -h 127.0.0.1 -p "$SW" -U postgres -d postgres -Atqc "SELECT 2" -c '\conninfo' 2>&1 || true)
grep -qx 2 <<<"$out" && grep -q "SSL connection (protocol: TLS" <<<"$out" ||
  fail "sslmode=require through the router: $out"
sql "$WRITE" "CREATE ROLE app LOGIN PASSWORD 'app-secret'; GRANT ALL ON SCHEMA public TO app" >/dev/null
out=$(PGPASSWORD=wrong psql -h 127.0.0.1 -p "$SW" -U app -d postgres -Atqc "SELECT 1" 2>&1 || true)
grep -q 'password authentication failed for user "app"' <<<"$out" || fail "a wrong password: $out"
out=$(PGPASSWORD=x psql -h 127.0.0.1 -p "$SW" -U nobody -d postgres -Atqc "SELECT 1" 2>&1 || true)
grep -q 'password authentication failed for user "nobody"' <<<"$out" || fail "an unknown role: $out"
[ "$(PGPASSWORD=app-secret psql -h 127.0.0.1 -p "$SW" -U app -d postgres -Atqc "SELECT current_user")" = app ] ||
  fail "the role app cannot log in through the router"

step "a cancel request reaches the session's backend"
$PY - "$SW" <<'PYEOF' || fail "cancel"
import sys, threading, time, psycopg2, psycopg2.errors
conn = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="postgres", dbname="postgres")
threading.Timer(1.0, conn.cancel).start()
started = time.time()
try:
    conn.cursor().execute("SELECT pg_sleep(30)")
    sys.exit("the query was not cancelled")
except psycopg2.errors.QueryCanceled:
    pass
if time.time() - started > 10:
    sys.exit("the cancel took %.1f s" % (time.time() - started))
conn.rollback()
cur = conn.cursor()
cur.execute("SELECT 1")
assert cur.fetchone()[0] == 1
PYEOF

step "pgbench -c 8 -j 2 -T 40 through $SW with a switchover in the middle"
PGPASSWORD=$POSTGRES_PASSWORD "$PGBENCH" -i -s 1 -q -h 127.0.0.1 -p "$WRITE" -U postgres postgres >"$WORK/pgbench-init.log" 2>&1 ||
  fail "pgbench -i: $(tail -3 "$WORK/pgbench-init.log")"
PGPASSWORD=$POSTGRES_PASSWORD "$PGBENCH" -c 8 -j 2 -T 40 -h 127.0.0.1 -p "$SW" -U postgres postgres \
  >"$WORK/pgbench.log" 2>&1 &
BENCH=$!
sleep 12
switch_over
candidate=$SWITCHED_TO
wait "$BENCH" || fail "pgbench failed: $(tail -15 "$WORK/pgbench.log")"
cat "$WORK/pgbench.log" | grep -E "processed|failed|tps|aborted" || true
grep -q "number of failed transactions: 0 " "$WORK/pgbench.log" || fail "pgbench had failed transactions: $(tail -15 "$WORK/pgbench.log")"
grep -qi "abort" "$WORK/pgbench.log" && fail "a pgbench client aborted: $(grep -i abort "$WORK/pgbench.log" | head -3)"
processed=$(awk '/number of transactions actually processed/ {print $6}' "$WORK/pgbench.log" | cut -d/ -f1)
eventually 60 "$candidate leads with two streaming replicas" settled
leader_is "$candidate" || fail "the leader is $(leader_now), not $candidate"
rows=$(sql "$WRITE" "SELECT count(*) FROM pgbench_history")
[ "$rows" = "$processed" ] || fail "pgbench committed $processed transactions, pgbench_history holds $rows rows"
echo "pgbench: $processed transactions, 0 failed, every one in pgbench_history;" \
  "sessions moved $(metric pgha_router_session_moved_total), pauses $(metric pgha_router_session_pauses_total)"
[ "$(metric pgha_router_session_moved_total)" -ge 8 ] || fail "the router moved fewer sessions than pgbench had"
grep -q "acknowledged the leader's handover notice" "$WORK/session-router.log" ||
  fail "the session router did not acknowledge the handover notice"

step "pgbench -M prepared -c 4 -j 2 -T 20 through a switchover: named statements parsed again on the new primary"
PGPASSWORD=$POSTGRES_PASSWORD "$PGBENCH" -M prepared -c 4 -j 2 -T 20 -h 127.0.0.1 -p "$SW" -U postgres postgres \
  >"$WORK/pgbench-prepared.log" 2>&1 &
BENCH=$!
sleep 7
switch_over
wait "$BENCH" || fail "pgbench -M prepared failed: $(tail -15 "$WORK/pgbench-prepared.log")"
grep -q "number of failed transactions: 0 " "$WORK/pgbench-prepared.log" ||
  fail "pgbench -M prepared had failed transactions: $(tail -15 "$WORK/pgbench-prepared.log")"
echo "pgbench -M prepared: $(awk '/actually processed/ {print $6}' "$WORK/pgbench-prepared.log") transactions, 0 failed"
eventually 60 "$SWITCHED_TO leads with two streaming replicas" settled

step "pooled psycopg2 clients through a switchover; a session with a temporary table is closed"
rm -f "$WORK/stop"
$PY - "$SW" "$WORK/stop" >"$WORK/pool.json" 2>"$WORK/pool.err" <<'PYEOF' &
import json, os, sys, threading, time, psycopg2
port, stop = int(sys.argv[1]), sys.argv[2]
errors, done = [], [0]
def worker(n):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    cur = conn.cursor()
    cur.execute("SET application_name = 'pool-%d'" % n)
    conn.commit()
    i = 0
    while not os.path.exists(stop):
        i += 1
        try:
            cur.execute("INSERT INTO pool_rows VALUES (%s, %s)", (n, i))
            cur.execute("SELECT current_setting('application_name')")
            assert cur.fetchone()[0] == "pool-%d" % n, "the SET was not carried over"
            conn.commit()
            done[0] += 1
        except Exception as e:
            errors.append(repr(e))
            conn.rollback()
        time.sleep(0.01)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"committed": done[0], "errors": errors[:5], "error_count": len(errors)}))
PYEOF
POOL=$!
sql "$WRITE" "CREATE TABLE pool_rows(client int, i int, PRIMARY KEY (client, i))" >/dev/null
# psql, not psycopg2: libpq 15 keeps a FATAL's text only for psql's way of reporting it.
{ echo "CREATE TEMP TABLE scratch(a int);"
  until [ -e "$WORK/switched" ]; do sleep 0.2; done
  echo "SELECT count(*) FROM scratch;"
} | psql -h 127.0.0.1 -p "$SW" -U postgres -d postgres >"$WORK/temp.log" 2>&1 &
TEMP=$!
sleep 5
switch_over
candidate=$SWITCHED_TO
eventually 60 "$candidate leads with two streaming replicas" settled
touch "$WORK/switched"
sleep 3
touch "$WORK/stop"
wait "$POOL" || fail "the pooled clients failed: $(cat "$WORK/pool.err")"
wait "$TEMP" || true
cat "$WORK/pool.json" "$WORK/temp.log"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["error_count"] == 0 and d["committed"] > 100 else 1)' "$WORK/pool.json" ||
  fail "pooled clients saw errors across the switchover: $(cat "$WORK/pool.json")"
grep -q "FATAL:  terminating connection due to administrator command: pgha-router: .* holds a temporary table" "$WORK/temp.log" ||
  fail "the session with a temporary table was not closed with 57P01: $(cat "$WORK/temp.log")"
[ "$(metric pgha_router_session_pinned_closed_total)" -ge 1 ] || fail "no pinned session counted"

step "kill -9 of the primary: an idle session carries on, one inside a transaction gets an error and carries on"
leader=$(leader_now)
: >"$WORK/crash.log"
$PY - "$SW" "$WORK/killed" "$(port_of "$leader")" >"$WORK/crash.log" 2>&1 <<'PYEOF' &
import os, sys, time, psycopg2
port, killed, old_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def connect():
    return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
idle, busy = connect(), connect()
idle.autocommit = True
icur, bcur = idle.cursor(), busy.cursor()
icur.execute("SELECT inet_server_port()")
assert icur.fetchone()[0] == old_port, "the session is not on the primary"
bcur.execute("INSERT INTO pool_rows VALUES (-1, 1)")  # a transaction left open
print("ready"); sys.stdout.flush()
while not os.path.exists(killed):
    time.sleep(0.05)
icur.execute("SELECT inet_server_port()")  # waits for the new primary
new_port = icur.fetchone()[0]
assert new_port != old_port, "the idle session is still on the dead primary"
try:
    bcur.execute("INSERT INTO pool_rows VALUES (-1, 2)")
    sys.exit("the transaction whose server died went on")
except psycopg2.Error as e:
    print("transaction error: %s %s" % (e.pgcode, str(e).strip().splitlines()[0]))
busy.rollback()
bcur.execute("SELECT inet_server_port()")
assert bcur.fetchone()[0] == new_port
busy.commit()
bcur.execute("SELECT count(*) FROM pool_rows WHERE client = -1")
assert bcur.fetchone()[0] == 0, "the lost transaction's row is there"
print("both sessions carry on on port %d" % new_port)
PYEOF
CRASH=$!
eventually 20 "the crash clients are ready" grep -q ready "$WORK/crash.log"
# The whole node dies at once, as in a host crash: its agent, its postmaster and every backend.
# A postmaster killed alone leaves its backends up for a moment, and one that reads a query in that
# moment still answers it (a query sent right after a postmaster's SIGKILL was answered 30 times of 30).
postmaster=$(head -1 "$PGHA_STATE_DIR/$leader/data/postmaster.pid")
# shellcheck disable=SC2046  # one pid a word
kill -9 "$(cat "$PGHA_STATE_DIR/run/$leader.pid")" "$postmaster" $(pgrep -P "$postmaster")
# The idle session's next query comes after the crash, not with it: a statement already sent
# when its server dies is lost like a transaction (the router cannot know whether it ran).
sleep 1
touch "$WORK/killed"
wait "$CRASH" || fail "sessions across the crash: $(cat "$WORK/crash.log")"
cat "$WORK/crash.log"
[ "$(metric pgha_router_session_transactions_lost_total)" -ge 1 ] || fail "no lost transaction counted"
kill -0 "$ROUTER" || fail "the session router died: $(tail -5 "$WORK/session-router.log")"
kill -TERM "$ROUTER"
wait "$ROUTER" || true
echo "session mode: every step passed"
