#!/usr/bin/env bash
# pgha-exporter against Debian's prometheus-postgres-exporter (0.11.1) on the same real servers
# (a primary with a database of its own, and a streaming replica with a slot): the same metric
# names, label names and types, apart from a documented list of pgha-exporter's additions; the
# same with postgres_exporter's flags that trim the set. Then the deadline: a server that
# refuses, one that accepts and never answers, and a backend stopped mid-scrape give pg_up 0
# within the scrape timeout, and pg_up 1 again once the server answers. Bad flags, a missing
# data source and garbage on the HTTP port get clear errors and no crash.
set -euo pipefail
EXPORTER_BIN=$1/pgha-exporter
HERE=$(cd "$(dirname "$0")" && pwd)
SHAPES="python3 $HERE/support/metric_shapes.py"
REFERENCE=/usr/bin/prometheus-postgres-exporter
PG_BIN=/usr/lib/postgresql/15/bin
. "$HERE/support/skip.sh"
[ "$(id -u)" -eq 0 ] || skip_test "needs root (runs PostgreSQL as postgres)"
require_tool "$REFERENCE" "prometheus-postgres-exporter"

WORK=$(mktemp -d /tmp/pgha-exporter.XXXXXX)
chown postgres:postgres "$WORK"
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for data in "$WORK/primary" "$WORK/replica"; do
    [ -f "$data/postmaster.pid" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  done
  [ "$status" = 0 ] || { echo "--- logs"; tail -n 20 "$WORK"/*.log 2>/dev/null || true; }
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "=== $*"; }
port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((30000 + RANDOM % 2700))
    port_free "$port" && { echo "$port"; return; }
  done
  fail "no free port"
}
as_postgres() { runuser -u postgres -- "$@"; }
sql() { as_postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc "$2"; }
start_bg() {  # log-name command... ; records the PID
  "${@:2}" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
}
wait_http() {
  for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "$1" && return 0; sleep 0.1; done
  fail "$1 does not answer"
}

step "a primary and a streaming replica (PostgreSQL 15)"
PRIMARY=$(free_port)
as_postgres "$PG_BIN/initdb" -D "$WORK/primary" -A trust -U postgres >/dev/null
cat >>"$WORK/primary/postgresql.conf" <<CONF
port = $PRIMARY
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
wal_level = replica
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
REPLICA=$(free_port)
as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY" -U postgres -D "$WORK/replica" -R -C -S replica_1
echo "port = $REPLICA" >>"$WORK/replica/postgresql.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/replica" -l "$WORK/replica.log" -w start >/dev/null
sql "$PRIMARY" "CREATE DATABASE app" >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "$PRIMARY" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] && break
  sleep 0.1
done

# Both exporters on one server with the same flags; prints the two shape files' difference.
# Series only pgha-exporter has are listed in ADDITIONS; anything else that differs fails.
ADDITIONS='^(pg_postmaster_start_time_seconds|pg_replication_lag|pg_replication_is_replica|pgha_exporter_build_info) '
compare() {  # name server-port flags...
  local name=$1 port=$2 ref_port ours_port
  shift 2
  ref_port=$(free_port)
  ours_port=$(free_port)
  DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable" \
    start_bg "ref-$name" "$REFERENCE" --web.listen-address="127.0.0.1:$ref_port" "$@"
  DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable" \
    start_bg "ours-$name" "$EXPORTER_BIN" --web.listen-address="127.0.0.1:$ours_port" "$@"
  wait_http "http://127.0.0.1:$ref_port/metrics"
  wait_http "http://127.0.0.1:$ours_port/metrics"
  curl -s "http://127.0.0.1:$ref_port/metrics" >"$WORK/ref-$name.txt"
  curl -s "http://127.0.0.1:$ours_port/metrics" >"$WORK/ours-$name.txt"
  $SHAPES "$WORK/ref-$name.txt" | grep -vE '^(go_|promhttp_|postgres_exporter_build_info )' >"$WORK/ref-$name.shape"
  $SHAPES "$WORK/ours-$name.txt" | grep -vE "$ADDITIONS" >"$WORK/ours-$name.shape"
  grep -qE '^pg_up({.*})? 1$' "$WORK/ours-$name.txt" || fail "$name: pgha-exporter's pg_up is not 1"
  if ! diff -u "$WORK/ref-$name.shape" "$WORK/ours-$name.shape"; then
    fail "$name: names, labels or types differ from postgres_exporter's (- theirs, + ours)"
  fi
  echo "$name: $(wc -l <"$WORK/ref-$name.shape") metric families alike"
  # promtool: both parse; every lint finding on ours is one on theirs (the names are theirs).
  promtool check metrics <"$WORK/ref-$name.txt" 2>&1 | sort >"$WORK/ref-$name.lint" || true
  promtool check metrics <"$WORK/ours-$name.txt" 2>&1 | sort >"$WORK/ours-$name.lint" || true
  grep -qi 'error' "$WORK/ours-$name.lint" && fail "$name: promtool cannot parse ours: $(cat "$WORK/ours-$name.lint")"
  extra=$(comm -13 "$WORK/ref-$name.lint" "$WORK/ours-$name.lint")
  [ -z "$extra" ] || fail "$name: promtool findings postgres_exporter does not have: $extra"
}

step "the default set, on the primary and on the replica"
compare primary "$PRIMARY"
grep -q '^pg_stat_replication_pg_wal_lsn_diff{application_name="walreceiver",client_addr="127.0.0.1",server="127.0.0.1:'"$PRIMARY"'",slot_name="replica_1",state="streaming"} ' \
  "$WORK/ours-primary.txt" || fail "no replication lag series for the replica: $(grep '^pg_stat_replication' "$WORK/ours-primary.txt")"
grep -q '^pg_database_size_bytes{datname="app",' "$WORK/ours-primary.txt" || fail "no size of database app"
compare replica "$REPLICA"
grep -qx "pg_replication_is_replica{server=\"127.0.0.1:$REPLICA\"} 1" "$WORK/ours-replica.txt" || fail "the replica is not one"

step "postgres_exporter's flags trim the set the same way"
compare trimmed "$PRIMARY" --disable-settings-metrics --no-collector.database --constantLabels=env=test
grep -q '^pg_up{env="test"} 1$' "$WORK/ours-trimmed.txt" || fail "constant label missing on pg_up"
compare minimal "$PRIMARY" --disable-default-metrics --disable-settings-metrics --no-collector.bgwriter

step "a scrape never outlasts its deadline"
timed_scrape() {  # port header-timeout -> prints "seconds pg_up"
  local start end up
  start=$(date +%s.%N)
  up=$(curl -s -m 30 -H "X-Prometheus-Scrape-Timeout-Seconds: $2" "http://127.0.0.1:$1/metrics" | grep '^pg_up ' || true)
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) ${up#pg_up }"
}
# Starts pgha-exporter on a fresh port (OURS) for data source $2.
start_ours() {  # log-name data-source flags...
  OURS=$(free_port)
  DATA_SOURCE_NAME=$2 start_bg "$1" "$EXPORTER_BIN" --web.listen-address="127.0.0.1:$OURS" "${@:3}"
  wait_http "http://127.0.0.1:$OURS/"
}
# One scrape with Prometheus' timeout header; pg_up and the duration must be as expected.
expect_scrape() {  # description header-timeout pg_up min-seconds max-seconds
  local took up
  read -r took up <<<"$(timed_scrape "$OURS" "$2")"
  [ "$up" = "$3" ] || fail "$1: pg_up '$up', expected $3"
  echo "$1: pg_up $up in ${took}s"
  awk -v t="$took" -v lo="$4" -v hi="$5" 'BEGIN { exit !(t >= lo && t < hi) }' ||
    fail "$1: the scrape took ${took}s, expected $4..$5 s"
}
# A port nobody listens on: refused at once.
start_ours refused "host=127.0.0.1 port=$(free_port) user=postgres dbname=postgres"
expect_scrape "refused connection" 10 0 0 2
# A listener that accepts and never speaks (a hung server, a black-holed network).
SILENT=$(free_port)
start_bg silent python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT)); s.listen(16); held = []
while True: held.append(s.accept()[0])"
for _ in $(seq 1 100); do port_free "$SILENT" || break; sleep 0.1; done
port_free "$SILENT" && fail "the silent listener did not start"
start_ours silent-exporter "host=127.0.0.1 port=$SILENT user=postgres dbname=postgres connect_timeout=60" \
  --scrape-timeout=20
expect_scrape "silent server, Prometheus timeout 3 s" 3 0 2 3
# The exporter's own backend stopped mid-life: the next scrape times out, the one after the
# backend resumes finds PostgreSQL again.
start_ours stopped-backend "host=127.0.0.1 port=$PRIMARY user=postgres dbname=postgres" --scrape-timeout=2
expect_scrape "before the backend stops" 10 1 0 2
# The newest pgha-exporter session is this exporter's (the comparisons' came before).
backend=$(sql "$PRIMARY" "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgha-exporter' ORDER BY backend_start DESC LIMIT 1")
[ -n "$backend" ] || fail "no pgha-exporter session on the primary"
kill -STOP "$backend"
PIDS+=("$backend")
expect_scrape "stopped backend, --scrape-timeout 2" 10 0 1.9 3
kill -CONT "$backend"
expect_scrape "after the backend resumed" 10 1 0 2

step "bad input: clear errors, no crash"
expect_refusal() {  # message command...
  local out status=0
  out=$("${@:2}" 2>&1) || status=$?
  [ "$status" != 0 ] || fail "accepted: ${*:2}"
  grep -qF "$1" <<<"$out" || fail "unclear message for ${*:2}: $out"
}
expect_refusal "no data source" env -u DATA_SOURCE_NAME "$EXPORTER_BIN" --web.listen-address=127.0.0.1:0
expect_refusal "is not name=value" env DATA_SOURCE_NAME=x "$EXPORTER_BIN" --constantLabels=oops
expect_refusal "not supported" env DATA_SOURCE_NAME=x "$EXPORTER_BIN" --extend.query-path=/q.yaml
expect_refusal "one pgha-exporter per server" env DATA_SOURCE_NAME="postgresql://a@h/d,postgresql://a@i/d" "$EXPORTER_BIN"
expect_refusal "cannot listen" env DATA_SOURCE_NAME="host=127.0.0.1 port=$PRIMARY" "$EXPORTER_BIN" --web.listen-address="127.0.0.1:$OURS"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OURS/nope")" = 404 ] || fail "unknown path not 404"
head -c 5000 /dev/urandom | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$OURS" 2>/dev/null || true
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$OURS" 2>/dev/null || true
expect_scrape "after garbage on the HTTP port" 10 1 0 2

step "idle and unfinished clients do not hold up a scrape"
/usr/bin/python3 - "$OURS" "$WORK/held.ready" <<'PY' &
import socket, sys, time
held = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    if i % 3 == 1:
        s.send(b"GET /metr")  # a request that never finishes
    held.append(s)
open(sys.argv[2], "w").close()
time.sleep(20)
PY
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 1 100); do [ -f "$WORK/held.ready" ] && break; sleep 0.1; done
[ -f "$WORK/held.ready" ] || fail "could not open 300 connections to the exporter"
expect_scrape "with 300 idle or unfinished connections open" 10 1 0 2
kill "$HOLDER" 2>/dev/null || true
echo "PASS"
