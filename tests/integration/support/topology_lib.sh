# Shared by the topology tests (sourced): a private state directory, ephemeral ports below the
# kernel's ephemeral range, and helpers. The caller sets BIN (pgha and pghactl) first; `cleanup`
# stops exactly the processes whose command line names this test's state directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CLUSTER=$REPO/scripts/cluster.sh
. "$REPO/tests/integration/support/skip.sh"
[ "$(id -u)" -eq 0 ] || skip_test "needs root (starts PostgreSQL as the postgres user)"

WORK=$(mktemp -d /tmp/pgha-topology.XXXXXX)
chmod 0755 "$WORK"
export PGHA_STATE_DIR=$WORK/state PGHA_ENV_FILE=$WORK/env PGHA_ENV_POSTGRES_FILE=$WORK/env.postgres
export PGHA_BIN_DIR=$BIN PGHA_HEALTH_TIMEOUT=240
LISTENER_PID=""

# Processes the topology launched with this state directory in their environment (the exporters,
# whose command lines cannot name it).
kill_by_environment() {
  local file pid
  for file in $(grep -lzxF "$1" /proc/[0-9]*/environ 2>/dev/null || true); do
    pid=${file#/proc/}
    pid=${pid%/environ}
    [ "$pid" = "$$" ] || kill -KILL "$pid" 2>/dev/null || true
  done
}

# Stop exactly what this test started: everything whose command line names its state dirs.
cleanup() {
  local status=$?
  [ -z "$LISTENER_PID" ] || kill "$LISTENER_PID" 2>/dev/null || true
  if [ -n "${PGHA_TEST_KEEP:-}" ]; then
    "$CLUSTER" down >/dev/null 2>&1 || true
  else
    "$CLUSTER" clean >/dev/null 2>&1 || true
  fi
  pkill -KILL -f "$WORK/" 2>/dev/null || true
  kill_by_environment "PGHA_LAUNCHED_BY=$PGHA_STATE_DIR"
  kill_by_environment "PGHA_LAUNCHED_BY=$WORK/state2"
  if [ -n "${PGHA_TEST_KEEP:-}" ]; then
    echo "kept $WORK (PGHA_TEST_KEEP)" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for log in "$PGHA_STATE_DIR"/log/*.log; do
    [ -f "$log" ] && { echo "--- $log (tail)"; tail -15 "$log"; }
  done >&2
  exit 1
}
step() { echo "=== $*"; }

# `producer | has PATTERN`: like `grep -q`, but reads all its input first. With pipefail, a
# `grep -q` that exits at the first match can fail the pipeline: the producer (curl, cat,
# pghactl) gets EPIPE or SIGPIPE writing the rest.
has() {
  local input
  input=$(cat)
  grep -q "$@" <<<"$input"
}

port_free() { ! ss -Htln "sport = :$1" | grep -q .; }

# Bases whose every derived port is free: etcd B,B+1 (+100, +200); PostgreSQL P..P+2;
# REST R..R+2; router W (write), W+1 (read), W+2 (stats); Prometheus W+3; exporters W+4..W+6.
# All below the kernel's ephemeral
# range (32768+), where outgoing connections could take a port between the check and the bind.
pick_ports() {
  local attempt b p r w port ok
  for attempt in $(seq 1 50); do
    b=$((10000 + RANDOM % 4500)); p=$((15000 + RANDOM % 4500))
    r=$((20000 + RANDOM % 4500)); w=$((25000 + RANDOM % 4500))
    ok=1
    for port in $b $((b + 1)) $((b + 100)) $((b + 101)) $((b + 200)) $((b + 201)) \
      $p $((p + 1)) $((p + 2)) $r $((r + 1)) $((r + 2)) $w $((w + 1)) $((w + 2)) $((w + 3)) $((w + 4)) $((w + 5)) $((w + 6)); do
      port_free "$port" || ok=0
    done
    if [ "$ok" = 1 ]; then
      ETCD=$b PG=$p REST=$r WRITE=$w READ=$((w + 1)) STATS=$((w + 2)) PROM=$((w + 3)) EXPORTER=$((w + 4))
      return 0
    fi
  done
  fail "no free ports found"
}

write_env() {  # file etcd pg rest write read stats
  cat >"$1" <<EOF
POSTGRES_PORT=$3
POSTGRES_WRITE_HOST_PORT=$5
POSTGRES_READ_HOST_PORT=$6
ETCD_CLIENT_PORT=$2
ETCD_PEER_PORT=$(($2 + 1))
PATRONI_RESTAPI_PORT=$4
HAPROXY_METRICS_HOST_PORT=$7
PROMETHEUS_PORT=$(($5 + 3))
POSTGRES_EXPORTER_PORT=$(($5 + 4))
SCOPE=pg-ha
PGHA_BIND_HOST=127.0.0.1
PGHA_TTL=6
PGHA_LOOP_WAIT=1
PGHA_RETRY_TIMEOUT=2
EOF
}

sql() {  # port statement; psql's errors go to $SQL_ERRORS when set (for a failing run)
  PGPASSWORD=$POSTGRES_PASSWORD psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc "$2" 2>>"${SQL_ERRORS:-/dev/null}"
}

eventually() {  # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "not within ${deadline}s: $what"
    sleep 0.5
  done
}

code() { curl -s -o /dev/null -w '%{http_code}' -m 5 "$@"; }

pids() { cat "$PGHA_STATE_DIR"/run/*.pid | sort | tr '\n' ' '; }

# Anything of the topology in state directory $1: by command line, or by the mark cluster.sh's
# launch() leaves in the environment.
ours_running() {
  pgrep -f "$1/" >/dev/null || [ -n "$(grep -lzxF "PGHA_LAUNCHED_BY=$1" /proc/[0-9]*/environ 2>/dev/null)" ]
}


# The member holding the leader key, by pghactl (the caller sets CTL to pghactl with a config).
leader_now() {
  "${CTL[@]}" list -f json | /usr/bin/python3 -c '
import json, sys
print("".join(m["Member"] for m in json.load(sys.stdin) if m["Role"] == "Leader"))'
}
leader_is() { [ "$(leader_now)" = "$1" ]; }

# One running leader, and both other members stream from it (its /patroni "replication").
settled() {
  local leader
  leader=$(leader_now)
  [ -n "$leader" ] || return 1
  curl -s -m 5 "http://127.0.0.1:$((REST + ${leader#pg-}))/patroni" | /usr/bin/python3 -c '
import json, sys
status = json.load(sys.stdin)
streaming = [r for r in status.get("replication", []) if r.get("state") == "streaming"]
sys.exit(0 if status.get("state") == "running" and len(streaming) == 2 else 1)'
}

# How often node $1's agent log mentions pg_rewind.
rewinds() { grep -ci "pg_rewind" "$PGHA_STATE_DIR/log/$1.log" || true; }

# `cluster.sh up` (with PGHA_AGENT=$1 when given), then the credentials into this shell
# (PGPASSWORD for sql) and one leader with two streaming replicas.
up_and_settle() {
  PGHA_AGENT=${1:-pgha} "$CLUSTER" up >"$WORK/up.log" 2>&1 || fail "cluster.sh up failed: $(tail -5 "$WORK/up.log")"
  set -a
  . "$PGHA_ENV_POSTGRES_FILE"
  set +a
  export PGPASSWORD=$POSTGRES_PASSWORD
  eventually 90 "the cluster settles" settled
}
