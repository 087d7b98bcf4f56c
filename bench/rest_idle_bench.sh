#!/usr/bin/env bash
# Health checks under idle connections: the `make up` topology is brought up once with pgha and
# once with Debian's Patroni (PGHA_AGENT=patroni, same patroni.yml files); for each, N idle TCP
# connections (connected, nothing sent) are held open to the leader's REST port and
# `OPTIONS /primary` is timed (5 s limit, HAProxy's `timeout check`). Printed per N: median and
# worst latency, failures, and pgha's median as a ratio of Patroni's. Run as root:
#   bench/rest_idle_bench.sh [--idle "0 8 64 256 1000"] [--checks 20]
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE="0 8 64 256 1000" CHECKS=20
while [ $# -gt 0 ]; do
  case $1 in
    --idle) IDLE=$2; shift 2 ;;
    --checks) CHECKS=$2; shift 2 ;;
    --measure) MEASURE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

if [ -n "${MEASURE:-}" ]; then
  # One agent: bring the topology up (tests' helpers: private state, ephemeral ports, cleanup).
  BIN=$PWD/build/release/apps
  . tests/integration/support/topology_lib.sh
  pick_ports
  write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
  PGHA_AGENT=$MEASURE "$CLUSTER" up >"$WORK/up.log" 2>&1 || fail "up with $MEASURE: $(tail -5 "$WORK/up.log")"
  CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")
  eventually 60 "the cluster settles" settled
  leader=$(leader_now)
  /usr/bin/python3 - "$MEASURE" "$((REST + ${leader#pg-}))" "$IDLE" "$CHECKS" >>"$RESULTS" <<'PY'
import socket, statistics, sys, time, http.client
agent, port, idle, checks = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3].split()], int(sys.argv[4])
held = []
for n in idle:
    while len(held) < n:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(s)
    times, failures = [], 0
    for _ in range(checks):
        start = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("OPTIONS", "/primary")
            ok = c.getresponse().status == 200
            c.close()
        except Exception:
            ok = False
        elapsed = (time.monotonic() - start) * 1000
        if ok:
            times.append(elapsed)
        else:
            failures += 1
    med = statistics.median(times) if times else float("nan")
    print(f"{agent}\t{n}\t{med:.2f}\t{max(times) if times else float('nan'):.2f}\t{failures}")
    sys.stdout.flush()
for s in held:
    s.close()
PY
  exit 0
fi

cmake --preset release -G Ninja >/dev/null
cmake --build --preset release -j "$(nproc)" --target pgha pghactl >/dev/null
RESULTS=$(mktemp /tmp/pgha-rest-idle.XXXXXX)
export RESULTS
for agent in pgha patroni; do
  "$0" --measure "$agent" --idle "$IDLE" --checks "$CHECKS" >/dev/null
done
/usr/bin/python3 - "$RESULTS" "$CHECKS" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
by = {(r[0], int(r[1])): (float(r[2]), float(r[3]), int(r[4])) for r in rows}
idle = sorted({int(r[1]) for r in rows})
print(f"OPTIONS /primary on the leader with N idle connections held open ({sys.argv[2]} checks each, 5 s limit)")
print("| idle | pgha median ms | pgha worst ms | pgha failed | Patroni median ms | Patroni worst ms | Patroni failed | pgha / Patroni (median) |")
print("|---|---|---|---|---|---|---|---|")
for n in idle:
    p, q = by.get(("pgha", n)), by.get(("patroni", n))
    ratio = f"{p[0] / q[0]:.2f}" if p and q and q[0] > 0 and p[0] == p[0] and q[0] == q[0] else "n/a"
    fmt = lambda v: f"{v[0]:.2f} | {v[1]:.2f} | {v[2]}" if v else "- | - | -"
    print(f"| {n} | {fmt(p)} | {fmt(q)} | {ratio} |")
PY
rm -f "$RESULTS"
