#!/bin/bash
# The entrypoint of pgha's image (deploy/container/Dockerfile). tini runs it as PID 1's child; it
# prepares the role's files from the environment and then `exec`s the role's process, so SIGTERM
# reaches that process directly. Safe to run again on the same volumes (`podman start`, a
# restarted container): configuration is regenerated, data is never initialised twice (pgha
# bootstraps only an empty data directory of a cluster without an `initialize` key).
#
# Roles (the command):
#   pgha        a PostgreSQL 15 node kept by pgha, configured from the seed's Spilo-style
#               variables: SCOPE, PATRONI_NAME, ETCD3_HOSTS, PGVERSION, POSTGRES_USER,
#               POSTGRES_PASSWORD (or PGUSER_SUPERUSER / PGPASSWORD_SUPERUSER), REPLICATION_USER,
#               REPLICATION_PASSWORD (or PGUSER_STANDBY / PGPASSWORD_STANDBY), REWIND_USER,
#               REWIND_PASSWORD, RESTAPI_USER, RESTAPI_PASSWORD, PATRONI_RESTAPI_PORT,
#               POSTGRES_PORT, PGHA_TTL, PGHA_LOOP_WAIT, PGHA_RETRY_TIMEOUT,
#               PGHA_CLIENT_NETWORK (pg_hba; default the container's network, 0.0.0.0/0)
#   etcd        an etcd member; etcd reads its ETCD_* variables itself
#   router      pgha-router on 5000 (writes), 5001 (reads), 8484 (stats), from SCOPE,
#               ETCD3_HOSTS and the REST credentials
#   haproxy     HAProxy with the seed's checks (/etc/pgha/haproxy.cfg), from PG_NODES
#   exporter    pgha-exporter (postgres_exporter's DATA_SOURCE_* variables)
#   prometheus  Prometheus scraping every part, with pgha's alert rules
#   anything else is run as given.
set -euo pipefail

die() { echo "pgha-entrypoint: $*" >&2; exit 1; }
# The image runs as postgres. Started as root (`--user root`, a bind mount owned by root), it
# gives the data directories to postgres and carries on as postgres.
if [ "$(id -u)" -eq 0 ]; then
  for dir in /home/postgres/pgdata /var/lib/etcd /var/lib/prometheus-data; do
    [ -d "$dir" ] && chown postgres:postgres "$dir"
  done
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# ETCD3_HOSTS as Spilo takes it ("'etcd-1:2379','etcd-2:2379'") or plain (etcd-1:2379,etcd-2:2379).
etcd_hosts() {
  local hosts=${ETCD3_HOSTS:-${ETCD_HOSTS:-}}
  hosts=${hosts//\'/}
  hosts=${hosts//\"/}
  hosts=${hosts// /}
  [ -n "$hosts" ] || die "ETCD3_HOSTS is not set (e.g. etcd-1:2379,etcd-2:2379,etcd-3:2379)"
  echo "$hosts"
}

credentials() {
  POSTGRES_USER=${POSTGRES_USER:-${PGUSER_SUPERUSER:-postgres}}
  POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-${PGPASSWORD_SUPERUSER:-}}
  REPLICATION_USER=${REPLICATION_USER:-${PGUSER_STANDBY:-replicator}}
  REPLICATION_PASSWORD=${REPLICATION_PASSWORD:-${PGPASSWORD_STANDBY:-}}
  REWIND_USER=${REWIND_USER:-rewind_user}
  REWIND_PASSWORD=${REWIND_PASSWORD:-}
  RESTAPI_USER=${RESTAPI_USER:-${PATRONI_RESTAPI_USERNAME:-admin}}
  RESTAPI_PASSWORD=${RESTAPI_PASSWORD:-${PATRONI_RESTAPI_PASSWORD:-}}
  local v
  for v in POSTGRES_PASSWORD REPLICATION_PASSWORD REWIND_PASSWORD RESTAPI_PASSWORD; do
    [ -n "${!v}" ] || die "$v is empty: set it in .env.postgres"
  done
}

node() {
  [ -z "${PGVERSION:-}" ] || [ "$PGVERSION" = 15 ] ||
    die "PGVERSION=$PGVERSION: this image runs PostgreSQL 15 (set PGVERSION=15)"
  credentials
  # Variables of this script, not Patroni settings: pgha would warn about them as unknown.
  local rest_port=${PATRONI_RESTAPI_PORT:-8008} pg_port=${POSTGRES_PORT:-5432}
  unset PATRONI_RESTAPI_PORT
  local name=${PATRONI_NAME:-$(hostname)}
  local home=/home/postgres pgdata=/home/postgres/pgdata
  [ -w "$pgdata" ] || die "$pgdata is not writable by $(id -un): give the volume to uid $(id -u postgres)"
  chmod 0700 "$pgdata"
  # shellcheck source=../../scripts/topology_config.sh
  . /usr/local/lib/pgha/topology_config.sh
  NODE_NAME=$name SCOPE=${SCOPE:-pg-ha} ETCD_HOSTS=$(etcd_hosts) \
    REST_LISTEN=0.0.0.0:$rest_port REST_CONNECT=$name:$rest_port \
    PG_LISTEN=0.0.0.0:$pg_port PG_CONNECT=$name:$pg_port \
    DATA_DIR=$pgdata/pgroot/data PG_BIN=/usr/lib/postgresql/15/bin PGPASS_FILE=$home/pgpass \
    CLIENT_NETWORK=${PGHA_CLIENT_NETWORK:-0.0.0.0/0} CONFIG_ORIGIN="the container entrypoint from its environment" \
    node_config >"$home/postgres.yml.new"
  chmod 0600 "$home/postgres.yml.new"
  mv -f "$home/postgres.yml.new" "$home/postgres.yml"
  install -d -m 0700 "$pgdata/pgroot"
  # libpq variables of the container (PGHOST is the image's, for `docker exec ... psql`) must
  # not reach PostgreSQL's WAL receiver.
  unset PGPASSWORD PGUSER PGHOST PGPORT PGDATABASE
  cd "$home"
  exec env HOME="$home" pgha "$home/postgres.yml"
}

# The router reads a patroni.yml for the scope, etcd and the REST credentials of its checks.
router_config() {
  credentials
  cat >/etc/pgha/router.yml <<EOF
scope: ${SCOPE:-pg-ha}
namespace: /service/
name: ${HOSTNAME:-router}
restapi:
  listen: 127.0.0.1:8008
  authentication:
    username: '${RESTAPI_USER//\'/\'\'}'
    password: '${RESTAPI_PASSWORD//\'/\'\'}'
etcd3:
  hosts: $(etcd_hosts)
EOF
  chmod 0600 /etc/pgha/router.yml
}

write_prometheus_config() {
  local nodes=${PG_NODES:-pg-0 pg-1 pg-2} n agents="" exporters=""
  for n in $nodes; do
    agents+=" $n:${PATRONI_RESTAPI_PORT:-8008}"
    exporters+=" $n-exporter:${POSTGRES_EXPORTER_PORT:-9187}"
  done
  # shellcheck source=../../scripts/topology_config.sh
  . /usr/local/lib/pgha/topology_config.sh
  CONFIG_ORIGIN="the container entrypoint" prometheus_config /etc/pgha/pgha-rules.yml "$agents" "$exporters" \
    "${ROUTER_HOST:-pg-router}:${HAPROXY_METRICS_PORT:-8484}" "$(etcd_hosts | tr ',' ' ')" "${ROUTER_JOB:-router}" \
    >/etc/pgha/prometheus.yml
}

# deploy/haproxy.cfg reads its addresses from the environment.
haproxy_env() {
  local i=0 n
  export PGHA_BIND_HOST=0.0.0.0 POSTGRES_WRITE_HOST_PORT=${POSTGRES_WRITE_PORT:-5000}
  export POSTGRES_READ_HOST_PORT=${POSTGRES_READ_PORT:-5001} HAPROXY_METRICS_HOST_PORT=${HAPROXY_METRICS_PORT:-8484}
  for n in ${PG_NODES:-pg-0 pg-1 pg-2}; do
    export "PG${i}_HOST=$n" "PG${i}_PORT=${POSTGRES_PORT:-5432}" "PG${i}_REST_PORT=${PATRONI_RESTAPI_PORT:-8008}"
    i=$((i + 1))
  done
}

role=${1:-pgha}
case $role in
  pgha) node ;;
  etcd)
    shift
    install -d -m 0700 "${ETCD_DATA_DIR:-/var/lib/etcd/data}"
    exec etcd "$@"
    ;;
  router)
    shift
    router_config
    export PGHA_ROUTER_WRITE_LISTEN=${PGHA_ROUTER_WRITE_LISTEN:-0.0.0.0:${POSTGRES_WRITE_PORT:-5000}}
    export PGHA_ROUTER_READ_LISTEN=${PGHA_ROUTER_READ_LISTEN:-0.0.0.0:${POSTGRES_READ_PORT:-5001}}
    export PGHA_ROUTER_STATS_LISTEN=${PGHA_ROUTER_STATS_LISTEN:-0.0.0.0:${HAPROXY_METRICS_PORT:-8484}}
    unset PGPASSWORD
    exec pgha-router /etc/pgha/router.yml "$@"
    ;;
  haproxy)
    shift
    haproxy_env
    exec haproxy -W -db -f /etc/pgha/haproxy.cfg "$@"
    ;;
  exporter)
    shift
    [ -n "${DATA_SOURCE_URI:-}${DATA_SOURCE_NAME:-}" ] || die "DATA_SOURCE_URI (or DATA_SOURCE_NAME) is not set"
    # .env.postgres gives the superuser's credentials; postgres_exporter's own names win.
    export DATA_SOURCE_USER=${DATA_SOURCE_USER:-${POSTGRES_USER:-postgres}}
    export DATA_SOURCE_PASS=${DATA_SOURCE_PASS:-${POSTGRES_PASSWORD:-}}
    unset POSTGRES_PASSWORD REPLICATION_PASSWORD REWIND_PASSWORD RESTAPI_PASSWORD
    exec pgha-exporter --web.listen-address=":${POSTGRES_EXPORTER_PORT:-9187}" "$@"
    ;;
  prometheus)
    shift
    write_prometheus_config
    exec prometheus --config.file=/etc/pgha/prometheus.yml --storage.tsdb.path=/var/lib/prometheus-data \
      --web.listen-address=":${PROMETHEUS_PORT:-9090}" "$@"
    ;;
  *) exec "$@" ;;
esac
