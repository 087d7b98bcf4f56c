#!/usr/bin/python3
"""pgha-router next to HAProxy (deploy/haproxy.cfg: the seed's checks, every 3 s, down after 3
failures, up after 2) in front of the same pgha cluster, in one run. Both routers run at once on
the same three nodes, so every fault and switchover is seen through both. Run as root.

  node crash        kill -9 of the primary's agent and postmaster: when the new leader key
                    appeared, the first write on the new primary itself (direct), and the first
                    write through each router's write port; a router's share is its first write
                    minus the leader key's appearance (it includes the promotion), and its own
                    delay is its first write minus the first direct one
  switchover        planned switchover under a load of 4 clients through each router at once,
                    connect-per-transaction and then pooled: failed transactions, longest stall
                    (at the first setting)
  throughput        pgbench -S -c 8 -j 2 through each router and directly to the primary
  latency           pgbench -S -c 1 per-transaction latency, p50 and p99, the same three ways
  connection rate   pgbench -S -C -c 4 -j 2 (a new connection per transaction)
  idle clients      RSS of each router with 1,000 clients connected that sent nothing yet
                    (these four at the setting with the longest ttl)
Writes a markdown table (medians over the trials, ratio pgha-router / HAProxy) to bench/results/.

usage: router_bench.py [--settings 2/0.5/0.5,30/10/10] [--trials 3] [--seconds 20]"""
import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack_bench as sb  # noqa: E402  (the shared topology driver)

LOAD = os.path.join(sb.REPO, "tests", "integration", "support", "connect_load.py")
ROUTERS = ("pgha-router", "HAProxy")


class Haproxy:
    """HAProxy with deploy/haproxy.cfg beside the topology's pgha-router, on ports of its own."""

    def __init__(self, topo):
        self.topo = topo
        base = topo.ports["write"] + 10
        while not all(sb.port_free(base + k) for k in range(3)):
            base += 3
        self.write, self.read, self.stats = base, base + 1, base + 2
        env = dict(os.environ, PGHA_BIND_HOST="127.0.0.1", POSTGRES_WRITE_HOST_PORT=str(self.write),
                   POSTGRES_READ_HOST_PORT=str(self.read), HAPROXY_METRICS_HOST_PORT=str(self.stats))
        for i in range(3):
            env.update({f"PG{i}_HOST": "127.0.0.1", f"PG{i}_PORT": str(topo.pg(i)),
                        f"PG{i}_REST_PORT": str(topo.rest(i))})
        self.log = open(os.path.join(topo.work, "haproxy-bench.log"), "w")
        self.process = subprocess.Popen(["haproxy", "-db", "-f",
                                         os.path.join(sb.REPO, "deploy", "haproxy.cfg")],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def primaries(self):
        status, body = self.topo.http("GET", f"http://127.0.0.1:{self.stats}/;csv")
        return {f[1] for f in (line.split(",") for line in body.decode(errors="replace").splitlines())
                if len(f) > 17 and f[0] == "primary" and f[1].startswith("pg-") and f[17].startswith("UP")}

    def pid(self):
        return self.process.pid

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def router_pid(topo):
    return int(open(os.path.join(topo.state, "run", "router.pid")).read().split()[0])


def write_ports(topo, haproxy):
    return {"pgha-router": topo.ports["write"], "HAProxy": haproxy.write}


def wait_both(topo, haproxy, seconds=300):
    """Healthy cluster, and both routers send writes to the one primary."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if topo.healthy():
            primary = f"pg-{topo.primary()}"
            if haproxy.primaries() == {primary}:
                return
        time.sleep(0.5)
    raise RuntimeError("routers not both on the primary")


def crash_trial(topo, haproxy):
    wait_both(topo, haproxy)
    topo.sql(topo.ports["write"], "CREATE TABLE IF NOT EXISTS bench_writes (t timestamptz)")
    wait_both(topo, haproxy)
    old = topo.primary()
    old_name, old_port = f"pg-{old}", topo.pg(old)
    ports = write_ports(topo, haproxy)
    t0 = time.monotonic()
    os.kill(topo.agent_pid(old), signal.SIGKILL)
    os.kill(topo.postmaster_pid(old), signal.SIGKILL)
    result, lock = {}, threading.Lock()

    def new_leader_key():
        name = topo.leader_key()
        return name and name != old_name

    def write_through(router):
        def probe():
            server = topo.try_write(ports[router])
            return server is not None and server != old_port
        return probe

    def direct_write():
        return any(topo.try_write(topo.pg(i)) for i in range(3) if i != old)

    probes = {"leader key": new_leader_key, "first write (direct)": direct_write}
    probes.update({f"first write ({r})": write_through(r) for r in ROUTERS})

    def run(name, probe):
        while time.monotonic() - t0 < 240:
            if probe():
                with lock:
                    result[name] = time.monotonic() - t0
                return
            time.sleep(0.02)

    threads = [threading.Thread(target=run, args=item) for item in probes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in ROUTERS:
        if f"first write ({r})" in result and "leader key" in result:
            result[f"router share ({r})"] = result[f"first write ({r})"] - result["leader key"]
        if f"first write ({r})" in result and "first write (direct)" in result:
            result[f"after the first direct write ({r})"] = \
                result[f"first write ({r})"] - result["first write (direct)"]
    topo.cluster("up")
    wait_both(topo, haproxy)
    return result


def switchover_trial(topo, haproxy, mode):
    wait_both(topo, haproxy)
    old = topo.primary()
    ports = write_ports(topo, haproxy)
    stop = os.path.join(topo.work, "stop")
    if os.path.exists(stop):
        os.unlink(stop)
    loads = {}
    for r in ROUTERS:
        table = "load_" + re.sub(r"\W", "_", r.lower())
        topo.sql(ports[r], f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY)")
        loads[r] = subprocess.Popen(["/usr/bin/python3", LOAD, str(ports[r]), stop, "--clients", "4",
                                     "--mode", mode, "--table", table], stdout=subprocess.PIPE,
                                    text=True, env=dict(os.environ, PGPASSWORD=topo.password))
    time.sleep(3)
    out = topo.ctl("switchover", "--leader", f"pg-{old}", "--force")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = topo.primary()
        if new is not None and new != old and haproxy.primaries() == {f"pg-{new}"}:
            break
        time.sleep(0.2)
    time.sleep(3)
    open(stop, "w").close()
    if out.returncode != 0:
        raise RuntimeError(f"switchover failed: {out.stdout}")
    result = {}
    for r, load in loads.items():
        summary = json.loads(load.communicate(timeout=120)[0])
        result[f"failed transactions ({r})"] = float(summary["failed"])
        result[f"longest stall ({r})"] = float(summary["longest_stall_s"])
    return result


def pgbench(port, password, *args):
    out = subprocess.run([f"{sb.PG_BIN}/pgbench", "-h", "127.0.0.1", "-p", str(port), "-U",
                          "postgres", *args, "postgres"], env=dict(os.environ, PGPASSWORD=password),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} on {port}: {out.stdout[-2000:]}")
    return out.stdout


def tps(text):
    match = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)", text) or \
        re.search(r"tps = ([0-9.]+)", text)
    return float(match.group(1))


def latencies(port, password, seconds, work):
    """Per-transaction latencies (ms) of pgbench -S -c 1 from its transaction log."""
    prefix = os.path.join(work, f"lat-{port}")
    pgbench(port, password, "-S", "-c", "1", "-j", "1", "-T", str(seconds), "-l",
            "--log-prefix", prefix)
    values = []
    for name in os.listdir(work):
        path = os.path.join(work, name)
        if path.startswith(prefix):
            values += [int(line.split()[2]) / 1000 for line in open(path) if line.strip()]
            os.unlink(path)
    values.sort()
    return values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]


def performance(topo, haproxy, seconds):
    wait_both(topo, haproxy)
    primary_port = topo.pg(topo.primary())
    ports = {"direct": primary_port, **write_ports(topo, haproxy)}
    pgbench(primary_port, topo.password, "-i", "-q", "-s", "10")
    time.sleep(2)
    result = {}
    for name, port in ports.items():
        result[f"pgbench -S -c 8 TPS ({name})"] = tps(
            pgbench(port, topo.password, "-S", "-c", "8", "-j", "2", "-T", str(seconds)))
    for name, port in ports.items():
        p50, p99 = latencies(port, topo.password, max(5, seconds // 2), topo.work)
        result[f"latency -c 1 p50 ms ({name})"] = p50
        result[f"latency -c 1 p99 ms ({name})"] = p99
    for name, port in ports.items():
        result[f"connections/s, -C -c 4 ({name})"] = tps(
            pgbench(port, topo.password, "-S", "-C", "-c", "4", "-j", "2", "-T",
                    str(max(5, seconds // 2))))
    return result


def idle_rss(topo, haproxy, clients=1000):
    """RSS of each router before and with `clients` connected clients that sent nothing."""
    result = {}
    for name, pid, port in (("pgha-router", router_pid(topo), topo.ports["write"]),
                            ("HAProxy", haproxy.pid(), haproxy.write)):
        before = sb.proc_kib(pid, "VmRSS")
        socks = []
        for _ in range(clients):
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            socks.append(s)
        time.sleep(2)
        result[f"RSS MiB idle ({name})"] = before / 1024
        result[f"RSS MiB with {clients} idle clients ({name})"] = sb.proc_kib(pid, "VmRSS") / 1024
        for s in socks:
            s.close()
        time.sleep(2)
    return result


def fmt(values):
    if not values:
        return "—"
    return f"{statistics.median(values):.3g} ({min(values):.3g}–{max(values):.3g})"


def write_table(path, started, args, versions, sections, lines):
    with open(path, "w") as f:
        f.write(f"# pgha-router vs HAProxy, {started:%Y-%m-%d %H:%M} UTC\n\n")
        f.write(f"`bench/router_bench.py --settings {args.settings} --trials {args.trials} "
                f"--seconds {args.seconds}`\n\n")
        for k, v in versions.items():
            f.write(f"- {k}: {v}\n")
        f.write("\nBoth routers run at once in front of the same pgha cluster (`make up`'s topology; "
                "HAProxy with `deploy/haproxy.cfg`), so each fault is measured through both. Seconds "
                "from the fault unless named otherwise; median (min–max) over the trials; ratio = "
                "pgha-router / HAProxy (or / direct for throughput and latency).\n")
        for title, samples in sections:
            f.write(f"\n## {title}\n\n| measure | pgha-router | HAProxy | ratio | direct |\n"
                    "|---|---|---|---|---|\n")
            measures = []
            for k in samples:
                base = re.sub(r" \((pgha-router|HAProxy|direct)\)$", "", k)
                if base not in measures and base != k:
                    measures.append(base)
            for base in measures:
                a = samples.get(f"{base} (pgha-router)", [])
                b = samples.get(f"{base} (HAProxy)", [])
                d = samples.get(f"{base} (direct)", [])
                ratio = "—"
                peer = d if d else b
                if a and peer and statistics.median(peer) > 0:
                    ratio = f"{statistics.median(a) / statistics.median(peer):.2f}" + \
                        (" of direct" if d else "")
                f.write(f"| {base} | {fmt(a)} | {fmt(b)} | {ratio} | {fmt(d)} |\n")
            others = [k for k in samples if not re.search(r" \((pgha-router|HAProxy|direct)\)$", k)]
            for k in others:
                f.write(f"| {k} | {fmt(samples[k])} | | | |\n")
        f.write("\n## Log\n\n```\n" + "\n".join(lines) + "\n```\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default="2/0.5/0.5,30/10/10")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(sb.REPO, "bench", "results"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the nodes run as the postgres user")
    settings = [tuple(float(x) if "." in x else int(x) for x in s.split("/"))
                for s in args.settings.split(",")]
    subprocess.run(["cmake", "--preset", "release", "-G", "Ninja"], cwd=sb.REPO, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count())],
                   cwd=sb.REPO, check=True, stdout=subprocess.DEVNULL)
    started = datetime.datetime.now(datetime.timezone.utc)
    versions = sb.versions()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{started:%Y-%m-%d-%H%M}-router.md")
    lines, sections = [], []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    # Switchovers at the first setting; throughput, latency and memory at the one with the longest
    # ttl, where pgbench saturating both cores cannot starve a lock renewal (at ttl 2 the fence
    # rightly stops a primary whose agent missed one).
    perf_index = max(range(len(settings)), key=lambda i: settings[i][0])
    for index, setting in enumerate(settings):
        topo = sb.Topology("pgha", *setting, router="pgha")
        haproxy = None
        samples = {}

        def add(result):
            for k, v in result.items():
                samples.setdefault(k, []).append(v)

        title = f"ttl {setting[0]}, loop_wait {setting[1]}, retry_timeout {setting[2]}"
        sections.append((title, samples))
        try:
            topo.cluster("up")
            haproxy = Haproxy(topo)
            log(f"== {title}")
            for n in range(args.trials):
                r = crash_trial(topo, haproxy)
                log(f"  node crash #{n + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                add({f"node crash: {k}": v for k, v in r.items()})
                write_table(path, started, args, versions, sections, lines)
            if index == 0:
                for mode in ("connect", "pooled"):
                    for n in range(args.trials):
                        r = switchover_trial(topo, haproxy, mode)
                        log(f"  switchover ({mode}) #{n + 1}: " +
                            ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                        add({f"switchover, {mode} clients: {k}": v for k, v in r.items()})
                    write_table(path, started, args, versions, sections, lines)
            if index == perf_index:
                r = performance(topo, haproxy, args.seconds)
                log("  performance: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                add(r)
                r = idle_rss(topo, haproxy)
                log("  idle clients: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()))
                add(r)
        except Exception as e:  # reported, not hidden
            log(f"  FAILED: {e}")
            samples["error"] = [0.0]
            logs = os.path.join(tempfile.gettempdir(), f"pgha-routerbench-logs-{index}")
            if haproxy:
                haproxy.stop()
            topo.destroy(keep_logs_in=logs)
            log(f"  logs kept in {logs}")
            write_table(path, started, args, versions, sections, lines)
            continue
        haproxy.stop()
        topo.destroy()
        write_table(path, started, args, versions, sections, lines)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
