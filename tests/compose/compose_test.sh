#!/usr/bin/env bash
# docker-compose.yml end to end, in containers (podman serving docker-compose, scripts/compose.sh),
# as its own project (named after this run) with its own image tag, free host ports and a free
# subnet, so that it runs beside `make up`, a user's compose project and another run of itself:
#   every container healthy -> one leader and two streaming replicas (`patronictl list` inside
#   pg-0, as the seed runs it) -> a write through the write port reaches the primary, a read
#   through the read port a replica -> `podman kill` of the primary's container: writes through
#   the write port on a new primary; after `podman start` the old one rejoins as a replica ->
#   `podman network disconnect` of the primary: it stops taking writes before another member takes
#   any, and rejoins after `network connect` -> Prometheus has every target up -> pg-router
#   recreated with PGHA_ROUTER=haproxy routes writes and reads the same way -> clean leaves no
#   container, volume, network or firewall chain of the project.
# usage: compose_test.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/integration/support/skip.sh"
[ "$(id -u)" -eq 0 ] || skip_test "needs root (podman's networks and firewall rules)"

PY=/usr/bin/python3
COMPOSE=$REPO/scripts/compose.sh

# A /24 of 172.29.0.0/16 that no podman network and no host route uses, starting at a point taken
# from this run's pid so that two runs starting together look in different places.
free_subnet() {
  local used n i
  used=$(cat /etc/containers/networks/*.json 2>/dev/null | grep -o '"subnet": *"[0-9./]*"' || true)
  used+=$'\n'$(ip -4 route show 2>/dev/null || true)
  for i in $(seq 0 253); do
    n=$(((($$ + i) % 254) + 1))
    grep -q "172\.29\.$n\." <<<"$used" || { echo "172.29.$n.0/24"; return 0; }
  done
  echo "no free /24 in 172.29.0.0/16" >&2
  return 1
}
# Four host ports the kernel says are free now.
free_ports() {
  $PY -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}

RUN_NAME=pghatest$$
export COMPOSE_PROJECT_NAME=$RUN_NAME PGHA_CONTAINER_PREFIX=$RUN_NAME- PGHA_IMAGE=localhost/pgha:$RUN_NAME
export PGHA_SUBNET=${PGHA_TEST_SUBNET:-$(free_subnet)}
read -r POSTGRES_WRITE_HOST_PORT POSTGRES_READ_HOST_PORT HAPROXY_METRICS_HOST_PORT PROMETHEUS_PORT <<<"$(free_ports)"
export POSTGRES_WRITE_HOST_PORT POSTGRES_READ_HOST_PORT HAPROXY_METRICS_HOST_PORT PROMETHEUS_PORT
export PGHA_TTL=10 PGHA_LOOP_WAIT=1 PGHA_RETRY_TIMEOUT=3
NET=${COMPOSE_PROJECT_NAME}_infra_net
WORK=$(mktemp -d /tmp/pgha-compose.XXXXXX)

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    eval "$("$COMPOSE" env)"
    for c in etcd-1 etcd-2 etcd-3 pg-0 pg-1 pg-2 pg-router; do
      echo "--- $PGHA_CONTAINER_PREFIX$c (log tail)"
      podman logs "$PGHA_CONTAINER_PREFIX$c" 2>&1 | grep -v ' kB (' | tail -25 || true
    done >&2
  fi
  "$COMPOSE" clean >/dev/null 2>&1 || true
  # The image stays untagged, as the next build's layer cache; untagged images older than a day go.
  eval "$("$COMPOSE" env)"
  podman untag "$PGHA_IMAGE" "$PGHA_IMAGE" >/dev/null 2>&1 || true
  podman image prune -f --filter until=24h >/dev/null 2>&1 || true
  # The image build's log stays only when the run failed.
  [ "$status" -ne 0 ] || rm -f "${PGHA_COMPOSE_DIR:-/var/lib/pgha-compose}/build-$COMPOSE_PROJECT_NAME.log"
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ ! -s "$WORK/sql-errors" ] || { echo "--- psql's errors"; tail -5 "$WORK/sql-errors"; } >&2
  [ ! -s "$WORK/etcd-unhealthy" ] || { echo "--- etcdctl endpoint health's answers"; tail -8 "$WORK/etcd-unhealthy"; } >&2
  exit 1
}
step() { echo "=== $*"; }
eventually() {  # seconds description command...
  local seconds=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "not within $seconds s: $what"
    sleep 1
  done
}

step "compose up (project $COMPOSE_PROJECT_NAME, subnet $PGHA_SUBNET, write $POSTGRES_WRITE_HOST_PORT, read $POSTGRES_READ_HOST_PORT)"
started=$SECONDS
"$COMPOSE" up >"$WORK/up.log" 2>&1 || fail "compose up: $(tail -20 "$WORK/up.log")"
echo "up and healthy in $((SECONDS - started)) s (image build included)"
eval "$("$COMPOSE" env)"
set -a
. "$REPO/.env.postgres"
set +a
export PGPASSWORD=$POSTGRES_PASSWORD

ctl() { podman exec "${PGHA_CONTAINER_PREFIX}pg-0" patronictl -c /home/postgres/postgres.yml "$@"; }
# pghactl list inside a container that runs: the leader's name, and how many replicas stream.
leader() {
  local c
  for c in pg-0 pg-1 pg-2; do
    podman exec "$PGHA_CONTAINER_PREFIX$c" patronictl -c /home/postgres/postgres.yml list -f json 2>/dev/null &&
      return 0
  done
  return 1
}
leader_name() { leader | $PY -c 'import json,sys; print("".join(m["Member"] for m in json.load(sys.stdin) if m["Role"] == "Leader"))'; }
streaming() { leader | $PY -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin) if m["Role"] == "Replica" and m["State"] in ("streaming", "running") and m.get("Lag in MB") == 0))'; }
settled() { [ -n "$(leader_name)" ] && [ "$(streaming)" = 2 ]; }
sql() { psql -h 127.0.0.1 -p "$1" -U "$POSTGRES_USER" -d postgres -Atqc "$2" 2>>"$WORK/sql-errors"; }
# The router's /metrics name one primary and two replicas.
router_ready() {
  local metrics
  metrics=$(curl -s -m 2 "http://127.0.0.1:$HAPROXY_METRICS_HOST_PORT/metrics" || true)
  [ "$(grep -c '^pgha_router_primary{' <<<"$metrics")" = 1 ] && [ "$(grep -c '^pgha_router_replica{' <<<"$metrics")" = 2 ]
}
in_container_sql() {  # container statement: through the container's own PostgreSQL socket
  podman exec "$PGHA_CONTAINER_PREFIX$1" psql -U postgres -d postgres -Atqc "$2" 2>/dev/null
}

step "one leader and two streaming replicas (patronictl inside pg-0)"
eventually 120 "one leader and two streaming replicas" settled
eventually 60 "the router routes to one primary and two replicas" router_ready
eventually 30 "patronictl list inside pg-0" ctl list
first=$(leader_name)

step "writes through $POSTGRES_WRITE_HOST_PORT reach the primary, reads through $POSTGRES_READ_HOST_PORT a replica"
sql "$POSTGRES_WRITE_HOST_PORT" "CREATE TABLE compose_test(id int PRIMARY KEY, at text)" >/dev/null || fail "create table through the write port"
sql "$POSTGRES_WRITE_HOST_PORT" "INSERT INTO compose_test VALUES (1, 'first')" >/dev/null || fail "insert through the write port"
[ "$(sql "$POSTGRES_WRITE_HOST_PORT" "SELECT pg_is_in_recovery()")" = f ] || fail "the write port does not reach the primary"
eventually 20 "the row on the read port" test "$(sql "$POSTGRES_READ_HOST_PORT" "SELECT at FROM compose_test WHERE id = 1")" = first
[ "$(sql "$POSTGRES_READ_HOST_PORT" "SELECT pg_is_in_recovery()")" = t ] || fail "the read port reaches the primary"

step "the seed's commands: etcdctl in etcd-1, psql in pg-0, docker-compose logs, pg_dump through the write port"
# A health probe of a follower can time out for a few seconds on a busy machine (CI saw two of three
# members miss etcdctl's 5 s deadline once, 14 s after start, while the cluster served the agents):
# a user would run it again, so the test does, and says when it had to.
etcd_healthy() {
  podman exec "${PGHA_CONTAINER_PREFIX}etcd-1" etcdctl --endpoints=http://etcd-1:2379,http://etcd-2:2379,http://etcd-3:2379 \
    endpoint health >"$WORK/etcd-health" 2>&1 && [ "$(grep -c 'is healthy' "$WORK/etcd-health")" = 3 ] && return 0
  grep -v '^{' "$WORK/etcd-health" | sed "s/^/  $(date +%T) /" >>"$WORK/etcd-unhealthy"
  return 1
}
eventually 60 "etcdctl endpoint health: every member healthy" etcd_healthy
[ ! -s "$WORK/etcd-unhealthy" ] || { echo "etcdctl endpoint health passed after earlier answers:"; cat "$WORK/etcd-unhealthy"; }
replicas_on_first() {
  [ "$(podman exec "$PGHA_CONTAINER_PREFIX$first" psql -U postgres -Atc "SELECT count(*) FROM pg_stat_replication")" = 2 ]
}
eventually 30 "two rows in pg_stat_replication on $first (docker exec $first psql -U postgres)" replicas_on_first
(cd "$REPO" && docker-compose logs --no-color pg-0) >"$WORK/logs" 2>&1 || fail "docker-compose logs: $(tail -3 "$WORK/logs")"
grep -q 'pgha 3.0.2 starting: member pg-0' "$WORK/logs" || fail "docker-compose logs pg-0 lacks the agent's log: $(tail -3 "$WORK/logs")"
pg_dump -h 127.0.0.1 -p "$POSTGRES_WRITE_HOST_PORT" -U "$POSTGRES_USER" -t compose_test postgres >"$WORK/dump.sql" ||
  fail "pg_dump through the write port"
grep -q 'first' "$WORK/dump.sql" || fail "the dump lacks the row"

step "podman kill of the primary's container ($first): writes through the write port on a new primary"
kill_time=$(date +%T.%3N)
podman kill -s KILL "$PGHA_CONTAINER_PREFIX$first" >/dev/null
started=$SECONDS
eventually 60 "a write through the write port after the kill" sql "$POSTGRES_WRITE_HOST_PORT" "INSERT INTO compose_test VALUES (2, 'after kill')"
second=$(leader_name)
{ [ -n "$second" ] && [ "$second" != "$first" ]; } || fail "the leader after the kill is '$second'"
echo "writes on $second $((SECONDS - started)) s after the kill (killed at $kill_time); what the agent and the router logged:"
# The steps in between, so that a slow run shows which one took the time.
{
  podman logs "$PGHA_CONTAINER_PREFIX$second" 2>&1 | grep -E 'acquired the leader lock|promoted self' | tail -2
  podman logs "$PGHA_CONTAINER_PREFIX"pg-router 2>&1 | grep -E 'write port' | tail -3
} | sed 's/^/  /'
# (podman says it cannot reach systemd to schedule health checks; scripts/compose.sh runs them.)
podman start "$PGHA_CONTAINER_PREFIX$first" >/dev/null 2>&1
eventually 120 "$first rejoins as a streaming replica" settled
[ "$(leader_name)" = "$second" ] || fail "the leader moved to $(leader_name) when $first came back"

step "podman network disconnect of the primary ($second): it stops taking writes before another member takes any"
podman network disconnect "$NET" "$PGHA_CONTAINER_PREFIX$second"
old_writable_until="" new_writable_at=""
deadline=$((SECONDS + 90))
while [ "$SECONDS" -lt "$deadline" ]; do
  now=$(date +%s.%N)
  if [ -z "$new_writable_at" ] || [ -z "$old_writable_until" ]; then
    [ "$(in_container_sql "$second" "SELECT pg_is_in_recovery()")" = f ] && old_writable_until=$now
    for c in pg-0 pg-1 pg-2; do
      [ "$c" != "$second" ] || continue
      if [ "$(in_container_sql "$c" "SELECT pg_is_in_recovery()")" = f ]; then new_writable_at=${new_writable_at:-$now}; fi
    done
  fi
  [ -z "$new_writable_at" ] || break
  sleep 0.2
done
[ -n "$new_writable_at" ] || fail "no member took over from the partitioned primary"
[ -n "$old_writable_until" ] || old_writable_until=0
$PY -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$old_writable_until" "$new_writable_at" ||
  fail "the partitioned primary was still writable at $old_writable_until, after the new one at $new_writable_at"
echo "partitioned primary last writable $($PY -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1) if float(sys.argv[1]) else 'never')" "$old_writable_until" "$new_writable_at") s before the new one"
eventually 60 "a write through the write port during the partition" sql "$POSTGRES_WRITE_HOST_PORT" "INSERT INTO compose_test VALUES (3, 'partition')"
podman network connect --alias "$second" "$NET" "$PGHA_CONTAINER_PREFIX$second"
eventually 120 "$second rejoins after the partition" settled
[ "$(sql "$POSTGRES_WRITE_HOST_PORT" "SELECT count(*) FROM compose_test")" = 3 ] || fail "rows missing"

step "Prometheus (port $PROMETHEUS_PORT) has every target up"
targets_up() {
  curl -s -m 5 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets" | $PY -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
down = [t["scrapeUrl"] for t in targets if t["health"] != "up"]
sys.exit(0 if len(targets) == 10 and not down else 1)'
}
# 3 agents, 3 exporters, the router and 3 etcd members.
eventually 60 "every Prometheus target up" targets_up

step "PGHA_ROUTER=haproxy: HAProxy in pg-router, with the seed's checks, routes the same way"
(cd "$REPO" && PGHA_ROUTER=haproxy docker-compose up -d --no-deps --no-build pg-router) >"$WORK/haproxy.log" 2>&1 ||
  fail "pg-router recreated with HAProxy: $(tail -5 "$WORK/haproxy.log")"
podman exec "${PGHA_CONTAINER_PREFIX}pg-router" pgrep -x haproxy >/dev/null || fail "pg-router does not run HAProxy"
# HAProxy starts with every server up and takes a member out only after `fall` failed checks
# (3 x 3 s with the seed's settings): until then its write port may reach a replica. Routing is
# checked once its checks have settled, as its own /metrics say.
haproxy_settled() {
  local metrics
  metrics=$(curl -s -m 5 "http://127.0.0.1:$HAPROXY_METRICS_HOST_PORT/metrics" || true)
  grep -q '^haproxy_backend_active_servers{proxy="primary"} 1$' <<<"$metrics" &&
    grep -q '^haproxy_backend_active_servers{proxy="replicas"} 2$' <<<"$metrics"
}
started=$SECONDS
eventually 60 "HAProxy's checks leave one server in primary and two in replicas" haproxy_settled
echo "HAProxy's checks settled $((SECONDS - started)) s after its start"
[ "$(sql "$POSTGRES_WRITE_HOST_PORT" "SELECT pg_is_in_recovery()")" = f ] || fail "HAProxy's write port reaches a replica"
[ "$(sql "$POSTGRES_READ_HOST_PORT" "SELECT pg_is_in_recovery()")" = t ] || fail "HAProxy's read port reaches the primary"
sql "$POSTGRES_WRITE_HOST_PORT" "INSERT INTO compose_test VALUES (4, 'haproxy')" >/dev/null || fail "a write through HAProxy"

step "clean removes the project's containers, volumes and network"
"$COMPOSE" clean >"$WORK/clean.log" 2>&1 || fail "clean: $(tail -5 "$WORK/clean.log")"
eval "$("$COMPOSE" env)"
[ -z "$(podman ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ] || fail "containers left"
[ -z "$(podman volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ] || fail "volumes left"
! podman network exists "$NET" || fail "network $NET left"
echo "PASS"
