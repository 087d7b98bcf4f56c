#!/usr/bin/python3
"""pgha-router's session mode next to its L4 mode, HAProxy (deploy/haproxy.cfg) and PgBouncer in
front of the same pgha cluster (`make up`'s topology), and Patroni + HAProxy, in one run. Run as
root.

  switchover   pgbench -c 8 -j 2 (TPC-B, long-lived connections) through each front door in turn,
               with a `pghactl switchover --force` a third of the way in: failed transactions,
               aborted clients, the longest stall (the longest time no transaction completed,
               from pgbench's per-transaction log), and whether every committed transaction is
               in pgbench_history
  throughput   pgbench -S -c 8 -j 2 directly to the primary and through each front door

The front doors of the pgha cluster: HAProxy, pgha-router L4 (the topology's), pgha-router
session, and PgBouncer (Debian's, pool_mode session, scram-sha-256) in front of the L4 router's
write port, so that it reaches the new primary at all. Then the pgha cluster is removed and the
same topology comes up with Patroni agents and HAProxy as its router (scripts/cluster.sh with
PGHA_AGENT=patroni), measured the same way (patronictl switchover); its trials run after the
pgha ones, not interleaved with them.
Writes a markdown table (medians over the trials; ratios against the L4 router and direct) to
bench/results/.

usage: session_bench.py [--trials 3] [--seconds 30] [--throughput-seconds 20] [--ttl 30]
                        [--loop-wait 1] [--retry-timeout 10]"""
import argparse
import datetime
import os
import pwd
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack_bench as sb  # noqa: E402  (the shared topology driver)
import router_bench as rb  # noqa: E402  (HAProxy beside the topology, pgbench helpers)

PATRONI_DOOR = "Patroni + HAProxy"
PGHA_DOORS = ("pgha + HAProxy", "pgha-router L4", "pgha-router session", "PgBouncer")
DOORS = (PATRONI_DOOR,) + PGHA_DOORS


def free_base(start):
    base = start
    while not all(sb.port_free(base + k) for k in range(3)):
        base += 3
    return base


class SessionRouter:
    """A second pgha-router, `mode: session`, beside the topology's L4 one."""

    def __init__(self, topo):
        self.write = free_base(topo.ports["write"] + 30)
        config = os.path.join(topo.work, "session-router.yml")
        with open(os.path.join(topo.state, "config", "pg-0.yml")) as f:
            base = f.read()
        with open(config, "w") as f:
            f.write(base + f"\nrouter:\n  name: bench-session\n  mode: session\n"
                    f"  write_listen: 127.0.0.1:{self.write}\n"
                    f"  read_listen: 127.0.0.1:{self.write + 1}\n"
                    f"  stats_listen: 127.0.0.1:{self.write + 2}\n")
        self.log = open(os.path.join(topo.work, "session-router.log"), "w")
        self.process = subprocess.Popen([os.path.join(sb.BIN, "pgha-router"), config],
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class Pgbouncer:
    """PgBouncer in session pooling, logging clients in with the postgres role's SCRAM secret,
    in front of the L4 router's write port."""

    def __init__(self, topo, password):
        self.port = free_base(topo.ports["write"] + 40)
        work = os.path.join(topo.work, "pgbouncer")
        os.makedirs(work, exist_ok=True)
        secret = topo.sql(topo.pg(topo.primary()),
                          "SELECT passwd FROM pg_shadow WHERE usename = 'postgres'", fetch=True)[0][0]
        with open(os.path.join(work, "userlist.txt"), "w") as f:
            f.write(f'"postgres" "{secret}"\n')
        with open(os.path.join(work, "pgbouncer.ini"), "w") as f:
            f.write(f"""[databases]
postgres = host=127.0.0.1 port={topo.ports['write']} dbname=postgres user=postgres password={password}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {work}/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
""")
        postgres = pwd.getpwnam("postgres")
        for name in os.listdir(work):
            os.chown(os.path.join(work, name), postgres.pw_uid, postgres.pw_gid)
        os.chown(work, postgres.pw_uid, postgres.pw_gid)
        self.process = subprocess.Popen(
            ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
             "pgbouncer", os.path.join(work, "pgbouncer.ini")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class ClusterHaproxy:
    """The HAProxy that scripts/cluster.sh runs as a topology's router (PGHA_ROUTER=haproxy)."""

    def __init__(self, topo):
        self.topo = topo
        self.write = topo.ports["write"]

    def primaries(self):
        return self.topo.router_primaries()


def wait_answers(port, password, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                              "postgres", "-Atqc", "SELECT 1"], env=dict(os.environ, PGPASSWORD=password),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if out.stdout.strip() == "1":
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing answers on port {port}")


def switchover_trial(topo, haproxy, door, port, seconds):
    """pgbench through `port` with a switchover a third of the way in."""
    # HAProxy too must route to the current primary (its checks lag the cluster by seconds).
    rb.wait_both(topo, haproxy)
    primary = topo.pg(topo.primary())
    topo.sql(primary, "TRUNCATE pgbench_history")
    prefix = os.path.join(topo.work, "so-log")
    for name in os.listdir(topo.work):
        if name.startswith("so-log"):
            os.unlink(os.path.join(topo.work, name))
    bench = subprocess.Popen(
        [f"{sb.PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "8",
         "-j", "2", "-T", str(seconds), "-l", "--log-prefix", prefix, "postgres"],
        env=dict(os.environ, PGPASSWORD=topo.password), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, cwd=topo.work)
    time.sleep(seconds / 3)
    leader = topo.primary()
    # Under this load a replica may be more than maximum_lag_on_failover behind for a moment,
    # and the switchover is then refused: the other replica, or the same a moment later.
    for attempt in range(40):
        candidate = f"pg-{[i for i in range(3) if i != leader][attempt % 2]}"
        switched = topo.ctl("switchover", "pg-ha", "--leader", f"pg-{leader}", "--candidate",
                            candidate, "--force")
        if switched.returncode == 0 or "lagging" not in switched.stdout:
            break
        time.sleep(0.25)
    if switched.returncode != 0:
        bench.kill()
        raise RuntimeError(f"switchover to {candidate}: {switched.stdout[-1000:]}")
    output = bench.communicate(timeout=seconds + 120)[0]
    failed = re.search(r"number of failed transactions: (\d+)", output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    aborted = len(re.findall(r"client \d+ aborted", output))
    # The longest time without a completed transaction, over all clients.
    ends = []
    for name in os.listdir(topo.work):
        if name.startswith("so-log"):
            for line in open(os.path.join(topo.work, name)):
                fields = line.split()
                if len(fields) >= 6:
                    ends.append(int(fields[4]) + int(fields[5]) / 1e6)
    ends.sort()
    stall = max((b - a for a, b in zip(ends, ends[1:])), default=float(seconds))
    topo.wait_healthy()
    rows = int(topo.sql(topo.pg(topo.primary()), "SELECT count(*) FROM pgbench_history",
                        fetch=True)[0][0])
    done = int(processed.group(1)) if processed else 0
    return {
        f"failed transactions ({door})": float(failed.group(1)) if failed else float("nan"),
        f"aborted clients ({door})": float(aborted),
        f"longest stall s ({door})": stall,
        f"transactions ({door})": float(done),
        f"committed rows missing ({door})": float(max(0, done - rows)) if aborted == 0 else 0.0,
    }


def fmt(values):
    if not values:
        return "—"
    return f"{statistics.median(values):.3g} ({min(values):.3g}–{max(values):.3g})"


def write_table(path, started, args, versions, samples, lines):
    columns = ("direct",) + DOORS
    with open(path, "w") as f:
        f.write(f"# pgha-router session mode, {started:%Y-%m-%d %H:%M} UTC\n\n")
        f.write(f"`bench/session_bench.py --trials {args.trials} --seconds {args.seconds} "
                f"--throughput-seconds {args.throughput_seconds} --ttl {args.ttl} "
                f"--loop-wait {args.loop_wait} --retry-timeout {args.retry_timeout}`\n\n")
        for k, v in versions.items():
            f.write(f"- {k}: {v}\n")
        f.write("\nMedian (min–max) over the trials. PgBouncer sits in front of the L4 router's "
                "write port. Patroni + HAProxy ran on a cluster of its own after the others. "
                "Ratios: session mode / L4 mode, and / direct for throughput.\n\n")
        f.write("| measure | " + " | ".join(columns) + " | session / L4 | session / direct |\n")
        f.write("|---|" + "---|" * (len(columns) + 2) + "\n")
        measures = []
        for k in samples:
            base = re.sub(r" \(([^()]*)\)$", "", k)
            if base not in measures:
                measures.append(base)
        for base in measures:
            cells = [fmt(samples.get(f"{base} ({c})", [])) for c in columns]
            session = samples.get(f"{base} (pgha-router session)", [])
            l4 = samples.get(f"{base} (pgha-router L4)", [])
            direct = samples.get(f"{base} (direct)", [])
            ratio = lambda a, b: f"{statistics.median(a) / statistics.median(b):.2f}" \
                if a and b and statistics.median(b) > 0 else "—"
            f.write(f"| {base} | " + " | ".join(cells) +
                    f" | {ratio(session, l4)} | {ratio(session, direct)} |\n")
        f.write("\n## Log\n\n```\n" + "\n".join(lines) + "\n```\n")


def patroni_phase(args, log, add):
    """The same switchover and throughput trials through Patroni + HAProxy, on a topology of its
    own (the pgha one is gone by then: two clusters would share the two cores)."""
    topo = sb.Topology("patroni", args.ttl, args.loop_wait, args.retry_timeout, router="haproxy")
    try:
        topo.cluster("up")
        topo.wait_healthy()
        door = ClusterHaproxy(topo)
        wait_answers(door.write, topo.password)
        rb.pgbench(topo.pg(topo.primary()), topo.password, "-i", "-q", "-s", "10")
        for n in range(args.trials):
            r = switchover_trial(topo, door, PATRONI_DOOR, door.write, args.seconds)
            log(f"switchover #{n + 1}, {PATRONI_DOOR}: " +
                ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
            add({f"switchover: {k}": v for k, v in r.items()})
        rb.wait_both(topo, door)
        for n in range(args.trials):
            value = rb.tps(rb.pgbench(door.write, topo.password, "-S", "-c", "8", "-j", "2", "-T",
                                      str(args.throughput_seconds)))
            log(f"throughput #{n + 1}, {PATRONI_DOOR}: pgbench -S -c 8 TPS {value:.0f}")
            add({f"pgbench -S -c 8 -j 2 TPS ({PATRONI_DOOR})": value})
    finally:
        topo.destroy()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--throughput-seconds", type=int, default=20)
    # A long ttl and retry_timeout: pgbench through a router saturates both cores here, and at ttl 6
    # a lease keepalive then missed its 2 s deadline once and the fence rightly stopped the primary
    # in the middle of a throughput run. A switchover does not wait for the ttl.
    parser.add_argument("--ttl", type=int, default=30)
    parser.add_argument("--loop-wait", type=int, default=1)
    parser.add_argument("--retry-timeout", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(sb.REPO, "bench", "results"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the nodes run as the postgres user")
    subprocess.run(["cmake", "--preset", "release", "-G", "Ninja"], cwd=sb.REPO, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count())],
                   cwd=sb.REPO, check=True, stdout=subprocess.DEVNULL)
    started = datetime.datetime.now(datetime.timezone.utc)
    versions = sb.versions()
    versions["pgbouncer"] = subprocess.run(["pgbouncer", "--version"], stdout=subprocess.PIPE,
                                           text=True).stdout.splitlines()[0]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{started:%Y-%m-%d-%H%M}-session.md")
    lines, samples = [], {}

    def log(text):
        print(text, flush=True)
        lines.append(text)

    def add(result):
        for k, v in result.items():
            samples.setdefault(k, []).append(v)

    topo = sb.Topology("pgha", args.ttl, args.loop_wait, args.retry_timeout, router="pgha")
    haproxy = session = bouncer = None
    failed = False
    try:
        topo.cluster("up")
        topo.wait_healthy()
        haproxy = rb.Haproxy(topo)
        session = SessionRouter(topo)
        bouncer = Pgbouncer(topo, topo.password)
        ports = {"pgha + HAProxy": haproxy.write, "pgha-router L4": topo.ports["write"],
                 "pgha-router session": session.write, "PgBouncer": bouncer.port}
        for port in ports.values():
            wait_answers(port, topo.password)
        rb.pgbench(topo.pg(topo.primary()), topo.password, "-i", "-q", "-s", "10")
        for n in range(args.trials):
            for door in PGHA_DOORS:
                r = switchover_trial(topo, haproxy, door, ports[door], args.seconds)
                log(f"switchover #{n + 1}, {door}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                add({f"switchover: {k}": v for k, v in r.items()})
                write_table(path, started, args, versions, samples, lines)
        topo.wait_healthy()
        throughput_ports = {"direct": topo.pg(topo.primary()), **ports}
        for n in range(args.trials):
            for name, port in throughput_ports.items():
                value = rb.tps(rb.pgbench(port, topo.password, "-S", "-c", "8", "-j", "2", "-T",
                                          str(args.throughput_seconds)))
                log(f"throughput #{n + 1}, {name}: pgbench -S -c 8 TPS {value:.0f}")
                add({f"pgbench -S -c 8 -j 2 TPS ({name})": value})
            write_table(path, started, args, versions, samples, lines)
    except Exception as e:  # reported, not hidden
        log(f"FAILED: {e}")
        failed = True
    for part in (bouncer, session, haproxy):
        if part:
            part.stop()
    logs = os.path.join(tempfile.gettempdir(), "pgha-sessionbench-logs") if failed else None
    if logs:
        for name in ("session-router.log",):
            src = os.path.join(topo.work, name)
            if os.path.exists(src):
                os.makedirs(logs, exist_ok=True)
                os.replace(src, os.path.join(logs, name))
        log(f"logs kept in {logs}")
    topo.destroy(keep_logs_in=logs)
    write_table(path, started, args, versions, samples, lines)
    if not failed:
        try:
            patroni_phase(args, log, add)
        except Exception as e:  # reported, not hidden
            log(f"FAILED: {PATRONI_DOOR}: {e}")
            failed = True
    write_table(path, started, args, versions, samples, lines)
    print(f"wrote {path}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
