#!/usr/bin/env bash
# Installs every Debian package pgha needs to build, test and run its topology.
# Idempotent: when everything is present it only checks and returns. Works as root, or as a
# user with sudo. Package services (etcd, haproxy, prometheus, postgresql) are not started by
# the install: pgha's own scripts start exactly the processes they need, on their own ports.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config git clang clang-format
  # libraries
  libpq-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libasio-dev libcpp-httplib-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  # servers and tools the tests and the topology run for real
  postgresql-15 postgresql-client-15 etcd-server etcd-client haproxy prometheus patroni
  prometheus-postgres-exporter bc
  # the session-mode benchmark's reference pooler (bench/session_bench.py)
  pgbouncer
  openssl curl iproute2 procps python3-psycopg2 nftables
  # make coverage
  gcovr
  # systemd-analyze checks the shipped units (tests/compat/deploy_files_test.sh)
  systemd
  # Patroni's acceptance suite (tests/acceptance): behave and what its steps import
  python3-behave python3-psutil python3-yaml python3-coverage util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: missing packages (${missing[*]}) and not root, and no sudo to install them" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}"
# Keep Debian's maintainer scripts from starting etcd/haproxy/prometheus/postgresql services
# on the default ports during the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables postgres_exporter's service, which would take port 9187 (pgha-exporter's) at the
# next boot; pgha runs postgres_exporter only in its tests, as the reference.
if [[ " ${missing[*]} " == *" prometheus-postgres-exporter "* ]] && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus-postgres-exporter >/dev/null 2>&1 || true
fi
echo "setup: done"
