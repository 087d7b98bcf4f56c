#!/usr/bin/env bash
# docker-compose.yml on a machine with no Docker engine and no registry: podman serves Docker's
# API to docker-compose, images are built from a Debian bookworm rootfs made here.
#   compose.sh up      prepare podman (once), build the image, `docker-compose up -d`, wait until
#                      every container is healthy
#   compose.sh down    `docker-compose down` (volumes kept), then stop what `up` started around it
#   compose.sh clean   as down, and remove the volumes, the network and netavark's firewall chains
#   compose.sh build   prepare podman and build the image only
#   compose.sh env     print the variables that point docker-compose / podman at this setup:
#                      eval "$(scripts/compose.sh env)"; docker-compose ps
# Settings: PGHA_COMPOSE_DIR (podman's storage, configuration and base image; kept between runs
# and clones, default /var/lib/pgha-compose), COMPOSE_PROJECT_NAME (default pgha), and
# docker-compose.yml's own (.env, .env.postgres, PGHA_CONTAINER_PREFIX, PGHA_SUBNET).
# On a machine with Docker, plain `docker-compose up -d` needs none of this.
# Several projects may use one PGHA_COMPOSE_DIR at once (a user's and a test's, or two tests): the
# preparation runs under a lock, and the shared helpers stop only when no project is registered.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${PGHA_COMPOSE_DIR:-/var/lib/pgha-compose}
RUN=$DIR/run
SOCK=$RUN/podman.sock
IMAGE=${PGHA_IMAGE:-localhost/pgha:latest}
BASE_IMAGE=localhost/bookworm:base
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-pgha}
export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf
export DOCKER_HOST=unix://$SOCK PGHA_IMAGE=$IMAGE PGHA_BASE_IMAGE=$BASE_IMAGE
# podman's differences from Docker that docker-compose trips on (the file says which).
export COMPOSE_FILE=$REPO/docker-compose.yml:$REPO/deploy/container/podman-compose.override.yml
HEALTH_TIMEOUT=${PGHA_HEALTH_TIMEOUT:-300}
PACKAGES=(podman runc netavark aardvark-dns iptables conmon debootstrap docker-compose uidmap)

say() { printf '%s\n' "$*"; }
die() { printf 'compose: %s\n' "$*" >&2; exit 1; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root"
  say "compose: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# What this machine kind needs (podman's defaults fail here): rlimits within the host's hard
# limits, runc (crun refuses the hybrid cgroup layout), cgroupfs and file events (no systemd),
# netavark.
write_podman_config() {
  install -d -m 0700 "$DIR" "$DIR/storage" "$RUN" "$RUN/projects"
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] && nproc=32768
  [ "$nproc" -gt 32768 ] && nproc=32768
  # Written aside and renamed: a podman of another project may be reading the file right now.
  cat >"$CONTAINERS_CONF.new" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
# Debian's podman package also ships a CNI configuration; netavark + aardvark-dns resolve the
# compose services' names.
network_backend = "netavark"
EOF
  cat >"$CONTAINERS_STORAGE_CONF.new" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$RUN/storage"
EOF
  mv -f "$CONTAINERS_CONF.new" "$CONTAINERS_CONF"
  mv -f "$CONTAINERS_STORAGE_CONF.new" "$CONTAINERS_STORAGE_CONF"
}

# Preparing (debootstrap, the helpers) and stopping the helpers are one at a time per directory.
with_lock() {
  install -d -m 0700 "$DIR"
  (
    flock -w 900 8 || die "another compose.sh holds $DIR/lock for more than 900 s"
    "$@"
  ) 8>"$DIR/lock"
}

# A project is registered from its `up` to its `down` or `clean`; the helpers serve them all.
register_project() { install -d -m 0700 "$RUN/projects" && : >"$RUN/projects/$COMPOSE_PROJECT_NAME"; }
unregister_project() { rm -f "$RUN/projects/$COMPOSE_PROJECT_NAME"; }

debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# No registry here: the base image is a minimal bookworm made with debootstrap.
base_image() {
  podman image exists "$BASE_IMAGE" && return 0
  local rootfs=$DIR/rootfs
  say "compose: making $BASE_IMAGE with debootstrap (about 2 minutes, once)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed (log: $DIR/debootstrap.log)"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Docker's API for docker-compose.
start_api_service() {
  pid_alive "$RUN/service.pid" && return 0
  rm -f "$SOCK"
  # 8>&-: the helpers outlive this command and must not hold its lock.
  setsid podman system service --time=0 "unix://$SOCK" >>"$DIR/service.log" 2>&1 </dev/null 8>&- &
  echo $! >"$RUN/service.pid"
  for _ in $(seq 1 50); do
    [ -S "$SOCK" ] && return 0
    sleep 0.1
  done
  die "podman's API service did not start (log: $DIR/service.log)"
}

# Without systemd podman runs no health checks by itself; depends_on: service_healthy would wait
# for ever. This loop runs them every 2 s for containers not yet healthy, as systemd timers would.
start_health_runner() {
  pid_alive "$RUN/health.pid" && return 0
  setsid bash -c '
    while :; do
      for id in $(podman ps -q --filter health=starting --filter health=unhealthy 2>/dev/null); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
      sleep 2
    done' >>"$DIR/health.log" 2>&1 </dev/null 8>&- &
  echo $! >"$RUN/health.pid"
}

stop_pid() {
  pid_alive "$1" && { kill -TERM -- "-$(cat "$1")" 2>/dev/null || kill -TERM "$(cat "$1")" 2>/dev/null || true; }
  rm -f "$1"
}

prepare_locked() {
  install_packages
  write_podman_config
  # netavark turns forwarding on; `clean` puts back what was there before.
  [ -f "$DIR/ip_forward.before" ] || cat /proc/sys/net/ipv4/ip_forward >"$DIR/ip_forward.before"
  base_image
  start_api_service
  start_health_runner
  register_project
}
prepare() { with_lock prepare_locked; }

build_image() {
  say "compose: building $IMAGE (FROM $BASE_IMAGE)"
  podman build --build-arg "BASE=$BASE_IMAGE" -t "$IMAGE" -f "$REPO/deploy/container/Dockerfile" "$REPO" \
    >"$DIR/build-$COMPOSE_PROJECT_NAME.log" 2>&1 || { tail -30 "$DIR/build-$COMPOSE_PROJECT_NAME.log" >&2; die "image build failed (log: $DIR/build-$COMPOSE_PROJECT_NAME.log)"; }
}

compose() { (cd "$REPO" && docker-compose "$@"); }

# Every container of the project runs and is healthy.
all_healthy() {
  local lines
  lines=$(podman ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --format '{{.Names}} {{.Status}}')
  [ "$(wc -l <<<"$lines")" -ge 11 ] && ! grep -qv '(healthy)' <<<"$lines"
}

cmd_up() {
  prepare
  build_image
  "$REPO/scripts/cluster.sh" credentials >/dev/null
  compose up -d --no-build
  say "compose: waiting for every container to be healthy..."
  local deadline=$((SECONDS + HEALTH_TIMEOUT))
  until all_healthy; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      podman ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --format '{{.Names}} {{.Status}}' >&2
      die "not healthy within ${HEALTH_TIMEOUT}s (docker-compose logs, with: eval \"\$(scripts/compose.sh env)\")"
    fi
    sleep 2
  done
  podman ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --format '{{.Names}}\t{{.Status}}\t{{.Ports}}'
}

# The API service and the health-check runner serve every project on this machine: they stop
# with the last registered project and the last container.
stop_helpers_locked() {
  unregister_project
  local others
  others=$(ls "$RUN/projects" 2>/dev/null | tr '\n' ' ')
  if [ -n "$others" ] || [ -n "$(podman ps -aq 2>/dev/null)" ]; then
    say "compose: ${others:-other containers }remain; podman's API service and health checks keep running"
    return 0
  fi
  stop_pid "$RUN/health.pid"
  stop_pid "$RUN/service.pid"
  remove_firewall_leftovers
}

cmd_down() {
  [ -d "$DIR" ] || { say "Nothing to stop: $DIR does not exist."; return 0; }
  if pid_alive "$RUN/service.pid"; then compose down || true; fi
  with_lock stop_helpers_locked
}

# netavark leaves its iptables chains and ip_forward=1 behind once no network is left.
remove_firewall_leftovers() {
  [ -z "$(podman network ls -q --filter driver=bridge 2>/dev/null | grep -vx podman || true)" ] || return 0
  local table chain
  for table in nat filter; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'); do
      iptables -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" && $0 ~ "-j " c "( |$)" {sub(/^-A/, "-D"); print}' |
        while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  if [ -f "$DIR/ip_forward.before" ]; then
    cat "$DIR/ip_forward.before" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    rm -f "$DIR/ip_forward.before"
  fi
}

cmd_clean() {
  [ -d "$DIR" ] || { say "Nothing to clean: $DIR does not exist."; return 0; }
  with_lock start_api_service
  compose down -v --remove-orphans || true
  with_lock stop_helpers_locked
  say "Removed the $COMPOSE_PROJECT_NAME containers, volumes and network (images kept in $DIR)."
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  build) prepare && build_image ;;
  env)
    printf 'export CONTAINERS_CONF=%q CONTAINERS_STORAGE_CONF=%q DOCKER_HOST=%q COMPOSE_PROJECT_NAME=%q PGHA_IMAGE=%q COMPOSE_FILE=%q\n' \
      "$CONTAINERS_CONF" "$CONTAINERS_STORAGE_CONF" "$DOCKER_HOST" "$COMPOSE_PROJECT_NAME" "$IMAGE" "$COMPOSE_FILE"
    ;;
  *) die "usage: $0 up|down|clean|build|env" ;;
esac
