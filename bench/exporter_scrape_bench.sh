#!/usr/bin/env bash
# Scrape latency, CPU and memory of pgha-exporter and of Debian's postgres_exporter against the
# same PostgreSQL 15 with many tables, measured in one run with scrapes alternating between the
# two, printed as ratios (pgha-exporter / postgres_exporter). Run as root (PostgreSQL runs as
# the postgres user):
#   bench/exporter_scrape_bench.sh [--tables 5000] [--databases 3] [--scrapes 30]
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=5000 DATABASES=3 SCRAPES=30
while [ $# -gt 0 ]; do
  case $1 in
    --tables) TABLES=$2; shift 2 ;;
    --databases) DATABASES=$2; shift 2 ;;
    --scrapes) SCRAPES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
REFERENCE=/usr/bin/prometheus-postgres-exporter
[ -x "$REFERENCE" ] || { echo "needs prometheus-postgres-exporter (scripts/setup.sh)" >&2; exit 2; }
cmake --preset release -G Ninja >/dev/null
cmake --build --preset release -j "$(nproc)" --target pgha-exporter >/dev/null
OURS_BIN=$PWD/build/release/apps/pgha-exporter
PG_BIN=/usr/lib/postgresql/15/bin

WORK=$(mktemp -d /tmp/pgha-exporter-bench.XXXXXX)
chown postgres:postgres "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/data/postmaster.pid" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
free_port() {
  local port
  for _ in $(seq 1 100); do port=$((30000 + RANDOM % 2700)); port_free "$port" && { echo "$port"; return; }; done
  exit 1
}
PORT=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_locks_per_transaction = 1024
fsync = off
CONF
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/pg.log" -w start >/dev/null
psql_on() { runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -Atq -d "$1" -c "$2"; }
echo "creating $DATABASES databases with $TABLES tables each (indexed, with a row)..."
for d in $(seq 1 "$DATABASES"); do
  psql_on postgres "CREATE DATABASE bench_$d"
  psql_on "bench_$d" "DO \$\$ BEGIN FOR i IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO t%s VALUES (1, ''x'')', i); END LOOP; END \$\$"
done

DSN="postgresql://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
REF_PORT=$(free_port)
OURS_PORT=$(free_port)
DATA_SOURCE_NAME=$DSN "$REFERENCE" --web.listen-address="127.0.0.1:$REF_PORT" >"$WORK/ref.log" 2>&1 &
REF_PID=$!
PIDS+=("$REF_PID")
DATA_SOURCE_NAME=$DSN "$OURS_BIN" --web.listen-address="127.0.0.1:$OURS_PORT" --scrape-timeout=60 >"$WORK/ours.log" 2>&1 &
OURS_PID=$!
PIDS+=("$OURS_PID")
for port in "$REF_PORT" "$OURS_PORT"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# Proportional set size (shared library pages split among their users) and anonymous memory
# (heap, stacks): what the process itself costs, beside RSS, which counts shared libraries whole.
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
anon_kib() { awk '/^Pss_Anon:/ { print $2 }' "/proc/$1/smaps_rollup"; }
scrape() { curl -s -o "$WORK/$2.txt" -w '%{time_total}\n' "http://127.0.0.1:$1/metrics"; }
# Two warm-up scrapes each (connections, caches), then alternate.
for _ in 1 2; do scrape "$REF_PORT" ref >/dev/null; scrape "$OURS_PORT" ours >/dev/null; done
ref_cpu0=$(cpu_seconds "$REF_PID")
ours_cpu0=$(cpu_seconds "$OURS_PID")
: >"$WORK/ref.times"
: >"$WORK/ours.times"
for _ in $(seq 1 "$SCRAPES"); do
  scrape "$REF_PORT" ref >>"$WORK/ref.times"
  scrape "$OURS_PORT" ours >>"$WORK/ours.times"
done
ref_cpu=$(echo "$(cpu_seconds "$REF_PID") - $ref_cpu0" | bc -l)
ours_cpu=$(echo "$(cpu_seconds "$OURS_PID") - $ours_cpu0" | bc -l)
grep -qx 'pg_up 1' "$WORK/ours.txt" || { echo "pgha-exporter lost PostgreSQL" >&2; exit 1; }
grep -qx 'pg_up 1' "$WORK/ref.txt" || { echo "postgres_exporter lost PostgreSQL" >&2; exit 1; }
quantile() { sort -g "$1" | awk -v q="$2" '{ v[NR] = $1 } END { i = int(q * NR + 0.5); if (i < 1) i = 1; print v[i] }'; }
ref_p50=$(quantile "$WORK/ref.times" 0.5)
ours_p50=$(quantile "$WORK/ours.times" 0.5)
ref_p95=$(quantile "$WORK/ref.times" 0.95)
ours_p95=$(quantile "$WORK/ours.times" 0.95)
ref_rss=$(rss_kib "$REF_PID")
ours_rss=$(rss_kib "$OURS_PID")
ref_pss=$(pss_kib "$REF_PID")
ours_pss=$(pss_kib "$OURS_PID")
ref_anon=$(anon_kib "$REF_PID")
ours_anon=$(anon_kib "$OURS_PID")
ratio() { echo "scale=3; $1 / $2" | bc -l; }
echo
echo "exporter scrape benchmark: PostgreSQL 15, $DATABASES databases x $TABLES tables, $SCRAPES scrapes each, alternating"
printf '%-28s %14s %14s %8s\n' "" "pgha-exporter" "postgres_exp." "ratio"
printf '%-28s %14.4f %14.4f %8s\n' "scrape latency p50 (s)" "$ours_p50" "$ref_p50" "$(ratio "$ours_p50" "$ref_p50")"
printf '%-28s %14.4f %14.4f %8s\n' "scrape latency p95 (s)" "$ours_p95" "$ref_p95" "$(ratio "$ours_p95" "$ref_p95")"
printf '%-28s %14.3f %14.3f %8s\n' "exporter CPU, all scrapes (s)" "$ours_cpu" "$ref_cpu" "$(ratio "$ours_cpu" "$ref_cpu")"
printf '%-28s %14d %14d %8s\n' "exporter RSS after (KiB)" "$ours_rss" "$ref_rss" "$(ratio "$ours_rss" "$ref_rss")"
printf '%-28s %14d %14d %8s\n' "exporter PSS after (KiB)" "$ours_pss" "$ref_pss" "$(ratio "$ours_pss" "$ref_pss")"
printf '%-28s %14d %14d %8s\n' "exporter anon mem (KiB)" "$ours_anon" "$ref_anon" "$(ratio "$ours_anon" "$ref_anon")"
printf '%-28s %14d %14d\n' "lines per scrape" "$(wc -l <"$WORK/ours.txt")" "$(wc -l <"$WORK/ref.txt")"
echo "pgha-exporter's slowest collectors in the last scrape (s):"
grep '^pg_scrape_collector_duration_seconds' "$WORK/ours.txt" | sed 's/.*collector="\([^"]*\)"} /\1 /' | sort -k2 -gr | head -4 | sed 's/^/  /'
