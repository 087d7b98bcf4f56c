#!/usr/bin/python3
"""Fault injection against a real pgha cluster, each member in a network namespace of its own.

Topology (all inside namespaces this harness creates and deletes; nothing listens outside them):

  pgchaos-<pid>-h    the harness: a bridge with 10.x.y.254, HAProxy (deploy/haproxy.cfg, the seed's
                     router) on 10.x.y.254:5000, and this process's clients and probes
  pgchaos-<pid>-n1…3 one pgha node each (agent, fence, PostgreSQL) on 10.x.y.1…3
  pgchaos-<pid>-e1…3 one etcd member each on 10.x.y.11…13

While faults come and go:
  - writers insert unique ids through HAProxy's write port and record which commits were
    acknowledged;
  - one probe per node inserts a row directly every 50 ms; a node "accepts writes" between the first
    and the last acknowledged probe of a run without failures; runs of two nodes that overlap are
    split-brain;
  - after each fault is removed, the cluster must converge (one primary, every replica streaming,
    the write port working) within a bound, and every acknowledged id must be on the primary.

The report gives, per fault kind: count, write unavailability through HAProxy and on the nodes
(median, max), convergence time, lost acknowledged writes, split-brain overlaps.

Run as root (namespaces, nftables, tc). Exit status 0 only when nothing was lost (in synchronous or quorum
mode), no split-brain was seen and every fault converged.
"""
import argparse
import ipaddress
import json
import os
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extensions

from netns import enter_namespace

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_BIN = "/usr/lib/postgresql/15/bin"
PROBE_INTERVAL = 0.05
PASSWORD = "chaos-secret"
NODES = 3
ETCDS = 3

FAULT_KINDS = ["node-kill", "postmaster-kill", "agent-freeze", "partition", "etcd-cut",
               "etcd-member-down", "etcd-quorum-loss", "packet-loss", "delay", "slow-link",
               "rolling-restart"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, check=True, stdin=None):
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


# ------------------------------------------------------------------------ network namespaces

def namespaces():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def pids_in(ns):
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]


def kill_all_in(ns, sig=signal.SIGKILL):
    for pid in pids_in(ns):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def remove_stale_namespaces():
    """Namespaces left by a harness that died without cleaning up (its pid is gone)."""
    for ns in namespaces():
        m = re.match(r"pgchaos-(\d+)-", ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            log(f"removing stale namespace {ns}")
            kill_all_in(ns)
            run(["ip", "netns", "del", ns], check=False)


def subnet_in_use(subnet):
    """Addresses or routes of the machine (any namespace) that overlap the harness's subnet."""
    found = []
    for ns in [None] + namespaces():
        prefix = ["ip"] + (["-n", ns] if ns else [])
        try:
            addrs = json.loads(run(prefix + ["-j", "-4", "addr"], check=False).stdout or "[]")
            routes = json.loads(run(prefix + ["-j", "-4", "route"], check=False).stdout or "[]")
        except json.JSONDecodeError:
            continue
        for link in addrs:
            for a in link.get("addr_info", []):
                net = ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
                if net.overlaps(subnet):
                    found.append(f"{a['local']}/{a['prefixlen']} on {link['ifname']} ({ns or 'host'})")
        for r in routes:
            dst = r.get("dst", "")
            if dst in ("default", ""):
                continue
            net = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
            if net.overlaps(subnet):
                found.append(f"route {dst} ({ns or 'host'})")
    return found


class Network:
    def __init__(self, subnet):
        hosts = list(subnet.hosts())
        self.prefix = f"pgchaos-{os.getpid()}"
        self.harness = f"{self.prefix}-h"
        self.harness_ip = str(hosts[253])
        self.node_ns = [f"{self.prefix}-n{i + 1}" for i in range(NODES)]
        self.node_ip = [str(hosts[i]) for i in range(NODES)]
        self.etcd_ns = [f"{self.prefix}-e{i + 1}" for i in range(ETCDS)]
        self.etcd_ip = [str(hosts[10 + i]) for i in range(ETCDS)]
        self.created = []
        self.prefixlen = subnet.prefixlen

    def create(self):
        run(["ip", "netns", "add", self.harness])
        self.created.append(self.harness)
        h = ["ip", "-n", self.harness]
        run(h + ["link", "set", "lo", "up"])
        run(h + ["link", "add", "br0", "type", "bridge"])
        run(h + ["addr", "add", f"{self.harness_ip}/{self.prefixlen}", "dev", "br0"])
        run(h + ["link", "set", "br0", "up"])
        for k, (ns, ip) in enumerate(zip(self.node_ns + self.etcd_ns, self.node_ip + self.etcd_ip)):
            run(["ip", "netns", "add", ns])
            self.created.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(h + ["link", "add", f"v{k}", "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(h + ["link", "set", f"v{k}", "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{ip}/{self.prefixlen}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def harness_link_of_node(self, i):
        return f"v{i}"

    def destroy(self):
        for ns in reversed(self.created):
            kill_all_in(ns)
        time.sleep(0.2)
        for ns in reversed(self.created):
            run(["ip", "netns", "del", ns], check=False)
        self.created = []


# ------------------------------------------------------------------------ processes

class Spawner:
    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, ns, name, argv, as_postgres=False):
        cmd = ["ip", "netns", "exec", ns]
        if as_postgres:
            cmd += ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                    "env", "HOME=/var/lib/postgresql"]
        logf = open(os.path.join(self.work, "log", f"{name}.log"), "ab")
        proc = subprocess.Popen(cmd + argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.procs.append(proc)
        return proc

    def reap(self):
        for p in self.procs:
            p.poll()


def http_status(url, method="GET", timeout=1.0):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except Exception:
        return None, b""


# ------------------------------------------------------------------------ asynchronous libpq

def _wait(conn, deadline):
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        fd = conn.fileno()
        if state == psycopg2.extensions.POLL_READ:
            select.select([fd], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [fd], [], remaining)


def connect_async(dsn, timeout):
    """A connection within `timeout` seconds, or None. Never cancels: a timed-out attempt is closed."""
    conn = None
    try:
        conn = psycopg2.connect(dsn, async_=1)
        if _wait(conn, time.monotonic() + timeout):
            return conn
    except psycopg2.Error:
        pass
    if conn is not None:
        conn.close()
    return None


def execute_async(conn, sql, params, timeout):
    """Returns "ok" when the statement's commit was acknowledged within `timeout` seconds; "refused" when the
    server answered with an error and the session is still usable (a replica refusing a write);
    "broken" otherwise. A timed-out statement is not cancelled (the caller closes the connection): a
    cancelled wait for synchronous replication still reports success, with a warning, for a commit
    no standby confirmed."""
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return "ok" if _wait(conn, time.monotonic() + timeout) else "broken"
    except psycopg2.OperationalError:
        return "broken"
    except psycopg2.Error:
        return "refused" if not conn.closed else "broken"


# ------------------------------------------------------------------------ cluster

class Cluster:
    def __init__(self, net, work, bin_dir, settings, mode, log_level="INFO"):
        self.net = net
        self.log_level = log_level
        self.work = work
        self.bin_dir = bin_dir
        self.ttl, self.loop_wait, self.retry_timeout = settings
        self.mode = mode
        self.spawner = Spawner(work)
        self.agents = [None] * NODES
        self.etcds = [None] * ETCDS
        self.haproxy = None

    def node_dir(self, i):
        return os.path.join(self.work, f"n{i + 1}")

    def dsn(self, host, port=5432, timeout=2):
        return (f"host={host} port={port} user=postgres password={PASSWORD} dbname=postgres "
                f"connect_timeout={max(1, int(timeout))} application_name=chaos "
                f"options='-c statement_timeout=5000'")

    # etcd
    def start_etcd(self, k):
        initial = ",".join(f"e{j + 1}=http://{ip}:2380" for j, ip in enumerate(self.net.etcd_ip))
        ip = self.net.etcd_ip[k]
        self.etcds[k] = self.spawner.start(self.net.etcd_ns[k], f"e{k + 1}", [
            "etcd", "--name", f"e{k + 1}", "--data-dir", os.path.join(self.work, f"e{k + 1}"),
            "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
            "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
            "--initial-cluster", initial, "--initial-cluster-token", "pgchaos",
            "--initial-cluster-state", "new", "--logger", "zap", "--log-level", "warn"])

    def kill_etcd(self, k):
        if self.etcds[k] is not None:
            self.etcds[k].kill()
            self.etcds[k].wait()
            self.etcds[k] = None

    def etcd_healthy(self, k):
        status, body = http_status(f"http://{self.net.etcd_ip[k]}:2379/health")
        return status == 200 and b'"true"' in body

    # nodes
    def write_config(self, i):
        """The node's patroni.yml from the generator `make up` and the containers use
        (scripts/topology_config.sh): the harness passes only its addresses and timings."""
        d = self.node_dir(i)
        os.makedirs(d, exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
        os.chmod(d, 0o700)
        ip = self.net.node_ip[i]
        subnet = ipaddress.ip_network(f"{self.net.node_ip[0]}/{self.net.prefixlen}", strict=False)
        sync = {"sync": "synchronous_mode: true", "quorum": "synchronous_mode: quorum",
                "async": ""}[self.mode]
        env = dict(
            os.environ, CONFIG_ORIGIN="tests/chaos/chaos.py", NODE_NAME=f"n{i + 1}", SCOPE="chaos",
            ETCD_HOSTS=",".join(f"{e}:2379" for e in self.net.etcd_ip),
            REST_LISTEN=f"{ip}:8008", REST_CONNECT=f"{ip}:8008",
            RESTAPI_USER="admin", RESTAPI_PASSWORD=PASSWORD,
            PG_LISTEN=f"{ip}:5432", PG_CONNECT=f"{ip}:5432", DATA_DIR=f"{d}/data", PG_BIN=PG_BIN,
            PGPASS_FILE=f"{d}/pgpass", POSTGRES_USER="postgres", POSTGRES_PASSWORD=PASSWORD,
            REPLICATION_USER="replicator", REPLICATION_PASSWORD=PASSWORD,
            REWIND_USER="rewinder", REWIND_PASSWORD=PASSWORD, CLIENT_NETWORK=str(subnet),
            PGHA_TTL=str(self.ttl), PGHA_LOOP_WAIT=str(self.loop_wait),
            PGHA_RETRY_TIMEOUT=str(self.retry_timeout), PGHA_LOG_LEVEL=self.log_level,
            PGHA_EXTRA_DCS=sync, PGHA_LOCAL_PARAMETERS="shared_buffers: 32MB")
        config = subprocess.run(
            ["bash", "-c", '. "$0" && node_config', os.path.join(REPO, "scripts", "topology_config.sh")],
            env=env, check=True, capture_output=True, text=True).stdout
        path = os.path.join(d, "pgha.yml")
        with open(path, "w") as f:
            f.write(config)
        shutil.chown(path, "postgres", "postgres")
        os.chmod(path, 0o600)

    def start_agent(self, i):
        self.agents[i] = self.spawner.start(
            self.net.node_ns[i], f"n{i + 1}",
            [os.path.join(self.bin_dir, "pgha"), os.path.join(self.node_dir(i), "pgha.yml")],
            as_postgres=True)

    def diagnose(self):
        """What each node looks like when the cluster would not converge: its REST status, the
        threads of its agent (gdb), its processes. Written to the log folder."""
        for i in range(NODES):
            name = f"n{i + 1}"
            path = os.path.join(self.work, "log", f"{name}-diagnosis.txt")
            with open(path, "w") as out:
                url = f"http://{self.net.node_ip[i]}:8008/patroni"
                try:
                    with urllib.request.urlopen(url, timeout=3) as r:
                        out.write(f"GET {url}: {r.status}\n{r.read().decode(errors='replace')}\n")
                except Exception as e:  # the point is to record whatever happens
                    out.write(f"GET {url}: {e}\n")
                out.write("\nprocesses:\n" + run(["ps", "-o", "pid,stat,etime,args", "-p",
                                                     ",".join(map(str, pids_in(self.net.node_ns[i])))
                                                     or "1"], check=False).stdout)
                out.write("\nsockets:\n" + run(["ip", "netns", "exec", self.net.node_ns[i], "ss", "-tanpo"],
                                                check=False).stdout)
                pid = self.agent_pid(i)
                if pid and shutil.which("gdb"):
                    out.write(f"\nthreads of the agent (pid {pid}):\n")
                    out.write(run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                  check=False).stdout)
            log(f"  diagnosis of {name}: {path}")

    def agent_pid(self, i):
        return self.agents[i].pid if self.agents[i] is not None and self.agents[i].poll() is None else None

    def postmaster_pid(self, i):
        try:
            with open(os.path.join(self.node_dir(i), "data", "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def crash_node(self, i):
        kill_all_in(self.net.node_ns[i])
        if self.agents[i] is not None:
            self.agents[i].wait()
            self.agents[i] = None
        deadline = time.monotonic() + 10
        while pids_in(self.net.node_ns[i]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop_agent(self, i, timeout=60):
        if self.agents[i] is None:
            return
        self.agents[i].terminate()
        try:
            self.agents[i].wait(timeout)
        except subprocess.TimeoutExpired:
            self.crash_node(i)
        self.agents[i] = None

    def leader(self):
        """Index of the node whose REST API answers 200 to /primary, if exactly one does."""
        primaries = [i for i, ip in enumerate(self.net.node_ip)
                     if http_status(f"http://{ip}:8008/primary", "OPTIONS")[0] == 200]
        return primaries[0] if len(primaries) == 1 else None

    def wait_leader(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.2)
        return None

    def start_haproxy(self):
        env = dict(os.environ, PGHA_BIND_HOST=self.net.harness_ip, POSTGRES_WRITE_HOST_PORT="5000",
                   POSTGRES_READ_HOST_PORT="5001", HAPROXY_METRICS_HOST_PORT="8404")
        for i, ip in enumerate(self.net.node_ip):
            env.update({f"PG{i}_HOST": ip, f"PG{i}_PORT": "5432", f"PG{i}_REST_PORT": "8008"})
        cmd = ["ip", "netns", "exec", self.net.harness, "haproxy", "-db", "-f",
               os.path.join(REPO, "deploy", "haproxy.cfg")]
        logf = open(os.path.join(self.work, "log", "haproxy.log"), "ab")
        self.haproxy = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()

    def converged(self):
        """(True, primary) when one node is primary, every other streams from it and the REST API
        agrees; otherwise (False, why)."""
        in_recovery = {}
        for i, ip in enumerate(self.net.node_ip):
            try:
                with psycopg2.connect(self.dsn(ip)) as conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    in_recovery[i] = cur.fetchone()[0]
                conn.close()
            except psycopg2.Error as e:
                return False, f"n{i + 1}: {str(e).strip().splitlines()[0] if str(e).strip() else e}"
        primaries = [i for i, r in in_recovery.items() if not r]
        if len(primaries) != 1:
            return False, f"{len(primaries)} nodes out of recovery"
        primary = primaries[0]
        try:
            with psycopg2.connect(self.dsn(self.net.node_ip[primary])) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                streaming = cur.fetchone()[0]
            conn.close()
        except psycopg2.Error as e:
            return False, f"primary n{primary + 1}: {e}"
        if streaming != NODES - 1:
            return False, f"{streaming} replicas streaming from n{primary + 1}"
        if self.leader() != primary:
            return False, f"REST /primary does not name n{primary + 1} alone"
        return True, primary


# ------------------------------------------------------------------------ workload and probes

class Threads:
    """Daemon threads, one per argument, that run until finish()."""

    def start_threads(self, target, args):
        self.stop = threading.Event()
        self.threads = []
        for a in args:
            t = threading.Thread(target=target, args=(a,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


class Workload(Threads):
    """Writers through HAProxy's write port; each acknowledged id is recorded with its time."""

    def __init__(self, host, port, clients, pace):
        self.host, self.port, self.clients, self.pace = host, port, clients, pace
        self.lock = threading.Lock()
        self.acked = {}           # id -> monotonic time of acknowledgement
        self.ack_times = []
        self.unknown = 0          # commits whose outcome never reached the client
        self.refused = 0          # writes the server refused (e.g. routed to a replica)

    def dsn(self):
        return (f"host={self.host} port={self.port} user=postgres password={PASSWORD} "
                f"dbname=postgres application_name=chaos-writer")

    def writer(self, client):
        seq = 0
        conn = None
        while not self.stop.is_set():
            if conn is None:
                conn = connect_async(self.dsn(), 2)
                if conn is None:
                    time.sleep(0.05)
                    continue
            seq += 1
            ident = client * 10**9 + seq
            outcome = execute_async(conn, "INSERT INTO chaos(id, client) VALUES (%s, %s)", (ident, client), 5)
            if outcome == "ok":
                now = time.monotonic()
                with self.lock:
                    self.acked[ident] = now
                    self.ack_times.append(now)
            else:
                with self.lock:
                    if outcome == "broken":
                        self.unknown += 1
                    else:
                        self.refused += 1
                conn.close()
                conn = None
                time.sleep(0.05)
            time.sleep(self.pace)
        if conn is not None:
            conn.close()

    def start(self):
        self.start_threads(self.writer, range(1, self.clients + 1))

    def snapshot(self):
        with self.lock:
            return dict(self.acked)

    def acks_between(self, start, end):
        with self.lock:
            return [t for t in self.ack_times if start <= t <= end]


class Probes(Threads):
    """One prober per node, writing directly to it every PROBE_INTERVAL. A run is a sequence of
    acknowledged probes with no failure between them; the node accepted writes from the first
    probe's send to the last probe's acknowledgement."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.runs = {i: [] for i in range(NODES)}   # node -> [[start, end]]
        self.acks = {i: [] for i in range(NODES)}

    def prober(self, i):
        conn = None
        in_run = False
        ip = self.cluster.net.node_ip[i]
        dsn = (f"host={ip} port=5432 user=postgres password={PASSWORD} dbname=postgres "
               f"application_name=chaos-probe")
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += PROBE_INTERVAL
            if conn is None:
                conn = connect_async(dsn, 1)
            ok = False
            sent = time.monotonic()
            if conn is not None:
                outcome = execute_async(conn, "INSERT INTO chaos_probe(node) VALUES (%s)", (i,), 1)
                ok = outcome == "ok"
                if outcome == "broken":
                    conn.close()
                    conn = None
            acked = time.monotonic()
            with self.lock:
                if ok:
                    self.acks[i].append(acked)
                    if in_run:
                        self.runs[i][-1][1] = acked
                    else:
                        self.runs[i].append([sent, acked])
                in_run = ok
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def start(self):
        self.start_threads(self.prober, range(NODES))

    def overlaps(self, start, end):
        """Intervals in [start, end] when two nodes accepted writes at once."""
        with self.lock:
            runs = {i: [list(r) for r in rs if r[1] >= start and r[0] <= end]
                    for i, rs in self.runs.items()}
        found = []
        for a in range(NODES):
            for b in range(a + 1, NODES):
                for ra in runs[a]:
                    for rb in runs[b]:
                        lo, hi = max(ra[0], rb[0]), min(ra[1], rb[1])
                        if lo < hi:
                            found.append((a, b, lo, hi))
        return found

    def acks_between(self, start, end):
        with self.lock:
            return sorted(t for ts in self.acks.values() for t in ts if start <= t <= end)


def longest_gap(acks, start, end):
    points = [start] + [t for t in acks if start <= t <= end] + [end]
    return max(b - a for a, b in zip(points, points[1:]))


# ------------------------------------------------------------------------ faults

NFT_TABLE = "chaos"


def nft(ns, script):
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=script)


def nft_clear(ns):
    run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", NFT_TABLE], check=False)


def nft_drop(ns, match_in, match_out):
    nft(ns, f"""table inet {NFT_TABLE} {{
  chain input {{ type filter hook input priority 0; policy accept; {match_in} drop; }}
  chain output {{ type filter hook output priority 0; policy accept; {match_out} drop; }}
}}
""")


class Injector:
    def __init__(self, cluster, rng, delay_ms=200):
        self.c = cluster
        self.delay_ms = delay_ms
        self.net = cluster.net
        self.rng = rng

    def hold_long(self):
        return self.c.ttl + 4

    def inject(self, kind):
        """Applies the fault; returns (target description, heal function)."""
        c, net = self.c, self.net
        leader = c.wait_leader(30)
        if leader is None:
            raise RuntimeError("no leader to aim the fault at")
        ns = net.node_ns[leader]
        target = f"n{leader + 1}"
        if kind == "node-kill":
            c.crash_node(leader)
            return target, self.after(self.hold_long(), lambda: c.start_agent(leader))
        if kind == "postmaster-kill":
            pid = c.postmaster_pid(leader)
            if pid:
                os.kill(pid, signal.SIGKILL)
            return target, self.after(0, lambda: None)
        if kind == "agent-freeze":
            pid = c.agent_pid(leader)
            os.kill(pid, signal.SIGSTOP)
            return target, self.after(c.ttl + 3, lambda: os.kill(pid, signal.SIGCONT))
        if kind == "partition":
            # Cut from the other nodes and etcd; clients (the harness, HAProxy) still reach it, as
            # clients on the old primary's side of a partition would.
            nft_drop(ns, f"iifname \"eth0\" ip saddr != {net.harness_ip}",
                     f"oifname \"eth0\" ip daddr != {net.harness_ip}")
            return target, self.after(self.hold_long(), lambda: nft_clear(ns))
        if kind == "etcd-cut":
            etcds = ", ".join(net.etcd_ip)
            nft_drop(ns, f"ip saddr {{ {etcds} }}", f"ip daddr {{ {etcds} }}")
            return target, self.after(self.hold_long(), lambda: nft_clear(ns))
        if kind == "etcd-member-down":
            k = self.rng.randrange(ETCDS)
            c.kill_etcd(k)
            return f"e{k + 1}", self.after(8, lambda: c.start_etcd(k))
        if kind == "etcd-quorum-loss":
            members = self.rng.sample(range(ETCDS), 2)
            for k in members:
                c.kill_etcd(k)

            def restart():
                for k in members:
                    c.start_etcd(k)
            return ",".join(f"e{k + 1}" for k in members), self.after(self.hold_long(), restart)
        if kind == "packet-loss":
            pct = 30
            nft_drop(ns, f"iifname \"eth0\" numgen random mod 100 < {pct}",
                     f"oifname \"eth0\" numgen random mod 100 < {pct}")
            return f"{target} {pct}%", self.after(15, lambda: nft_clear(ns))
        if kind == "delay":
            # netem's delay, done in user space (this kernel has no sch_netem): everything the
            # primary sends waits delay_ms ± a quarter, in order.
            peers = [ip for k, ip in enumerate(net.node_ip) if k != leader] + net.etcd_ip + \
                [net.harness_ip]
            line = subprocess.Popen(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayline.py"),
                 ns, net.node_ip[leader], net.harness, str(self.delay_ms),
                 str(self.delay_ms // 4)] + peers,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

            def heal():
                line.terminate()
                _, err = line.communicate(timeout=10)
                if line.returncode != 0:
                    raise RuntimeError(f"delay line failed: {err.decode(errors='replace').strip()}")
            return f"{target} {self.delay_ms}±{self.delay_ms // 4} ms", self.after(15, heal)
        if kind == "slow-link":
            # The closest this kernel offers to delay: a 256 kbit/s token bucket each way, whose
            # queue holds packets up to 400 ms.
            shape = ["tbf", "rate", "256kbit", "burst", "16kbit", "latency", "400ms"]
            run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root"] + shape)
            link = net.harness_link_of_node(leader)
            run(["ip", "netns", "exec", net.harness, "tc", "qdisc", "add", "dev", link, "root"] + shape)

            def heal():
                run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
                run(["ip", "netns", "exec", net.harness, "tc", "qdisc", "del", "dev", link, "root"],
                    check=False)
            return target, self.after(15, heal)
        if kind == "rolling-restart":
            # Every node in turn, replicas first: the agent stops (a primary hands its leadership
            # over), starts again and the cluster converges before the next node.
            order = [i for i in range(NODES) if i != leader] + [leader]
            for i in order:
                c.stop_agent(i)
                c.start_agent(i)
                if not wait_converged(c, 120)[0]:
                    break
            return "all", self.after(0, lambda: None)
        raise ValueError(kind)

    @staticmethod
    def after(seconds, heal):
        def act():
            time.sleep(seconds)
            heal()
        return act


def wait_converged(cluster, timeout):
    deadline = time.monotonic() + timeout
    why = ""
    while time.monotonic() < deadline:
        ok, detail = cluster.converged()
        if ok:
            return True, detail
        why = detail
        time.sleep(0.25)
    return False, why


# ------------------------------------------------------------------------ checks and report

class Results:
    def __init__(self):
        self.rows = []

    def add(self, **row):
        self.rows.append(row)

    def table(self):
        lines = ["| fault | count | write gap via HAProxy median / max (s) | write gap on nodes median / max (s) "
                 "| convergence median / max (s) | not converged | lost acked writes | split-brain overlaps |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        kinds = []
        for r in self.rows:
            if r["kind"] not in kinds:
                kinds.append(r["kind"])
        for kind in kinds:
            rs = [r for r in self.rows if r["kind"] == kind]
            conv = [r["convergence"] for r in rs if r["convergence"] is not None]

            def mm(values):
                return f"{statistics.median(values):.2f} / {max(values):.2f}" if values else "–"
            lines.append(
                f"| {kind} | {len(rs)} | {mm([r['router_gap'] for r in rs])} | {mm([r['node_gap'] for r in rs])} "
                f"| {mm(conv)} | {sum(1 for r in rs if r['convergence'] is None)} "
                f"| {sum(r['lost'] for r in rs)} | {sum(r['split_brain'] for r in rs)} |")
        return "\n".join(lines)


def verify_acked(cluster, primary, workload, lost_ids):
    """Acknowledged ids missing on the primary (new losses only)."""
    acked = workload.snapshot()
    with psycopg2.connect(cluster.dsn(cluster.net.node_ip[primary], timeout=5)) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT id FROM chaos")
        present = {row[0] for row in cur}
    conn.close()
    missing = {i for i in acked if i not in present} - lost_ids
    lost_ids |= missing
    return len(missing)


def plan(kinds, total, rng):
    if total <= len(kinds):
        return kinds[:total] if total else list(kinds)
    order = []
    while len(order) < total:
        batch = list(kinds)
        rng.shuffle(batch)
        order += batch
    return order[:total]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", type=int, default=0,
                        help="number of faults (0: one of each kind)")
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS))
    parser.add_argument("--mode", choices=["sync", "quorum", "async"], default="sync")
    parser.add_argument("--settings", default="6/1/2", help="ttl/loop_wait/retry_timeout")
    parser.add_argument("--subnet", default="10.213.77.0/24")
    parser.add_argument("--bin-dir", default=os.path.join(REPO, "build", "release", "apps"))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--converge-timeout", type=float, default=120)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", help="write the markdown report here too")
    parser.add_argument("--delay-ms", type=int, default=200,
                        help="the delay fault's mean delay (± a quarter of it)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                        help="the agents' log level")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs when nothing failed too")
    args = parser.parse_args()

    if os.geteuid() != 0:
        # A skip must not pass quietly: it fails unless PGHA_ALLOW_SKIP says why it may.
        reason = "needs root (network namespaces, nftables, tc)"
        if os.environ.get("PGHA_ALLOW_SKIP"):
            print(f"chaos: SKIP (allowed, PGHA_ALLOW_SKIP={os.environ['PGHA_ALLOW_SKIP']}): {reason}")
            sys.exit(77)
        sys.exit(f"chaos: FAIL: cannot run here: {reason}; set PGHA_ALLOW_SKIP=<why> to allow a skip")
    for tool in ["ip", "nft", "tc", "etcd", "haproxy", "setpriv"]:
        if shutil.which(tool) is None:
            sys.exit(f"chaos: {tool} not found (scripts/setup.sh installs it)")
    if not os.access(os.path.join(args.bin_dir, "pgha"), os.X_OK):
        sys.exit(f"chaos: no pgha in {args.bin_dir}; build first")
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in FAULT_KINDS:
            sys.exit(f"chaos: unknown fault kind {k!r}; known: {', '.join(FAULT_KINDS)}")
    settings = tuple(float(x) for x in args.settings.split("/"))
    if len(settings) != 3:
        sys.exit("chaos: --settings is ttl/loop_wait/retry_timeout")
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    subnet = ipaddress.ip_network(args.subnet)
    if subnet.prefixlen > 24:
        sys.exit("chaos: the subnet needs at least 254 addresses (/24 or larger)")

    remove_stale_namespaces()
    busy = subnet_in_use(subnet)
    if busy:
        sys.exit(f"chaos: subnet {subnet} is already in use here: {'; '.join(busy)}; choose another "
                 f"with --subnet")

    work = tempfile.mkdtemp(prefix="pgha-chaos-")
    os.chmod(work, 0o755)  # the postgres user reaches its node's folder through it
    os.makedirs(os.path.join(work, "log"))
    net = Network(subnet)
    cluster = None
    failed = True

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    try:
        net.create()
        enter_namespace(net.harness)
        cluster = Cluster(net, work, args.bin_dir, settings, args.mode, args.log_level)
        log(f"namespaces {net.prefix}-*, subnet {subnet}, work {work}, seed {seed}, "
            f"mode {args.mode}, settings {args.settings}")
        for k in range(ETCDS):
            cluster.start_etcd(k)
        deadline = time.monotonic() + 30
        while not all(cluster.etcd_healthy(k) for k in range(ETCDS)):
            if time.monotonic() > deadline:
                raise RuntimeError("etcd did not become healthy")
            time.sleep(0.2)
        for i in range(NODES):
            cluster.write_config(i)
        cluster.start_agent(0)
        if cluster.wait_leader(120) != 0:
            raise RuntimeError("n1 did not bootstrap")
        for i in range(1, NODES):
            cluster.start_agent(i)
        cluster.start_haproxy()
        with psycopg2.connect(cluster.dsn(net.node_ip[0])) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE chaos(id bigint PRIMARY KEY, client int, at timestamptz DEFAULT now())")
            cur.execute("CREATE TABLE chaos_probe(node int, at timestamptz DEFAULT now())")
        conn.close()
        ok, detail = wait_converged(cluster, 180)
        if not ok:
            raise RuntimeError(f"the cluster did not converge after bootstrap: {detail}")
        log(f"cluster up: primary n{detail + 1}")

        workload = Workload(net.harness_ip, 5000, args.clients, 0.02)
        probes = Probes(cluster)
        workload.start()
        probes.start()
        deadline = time.monotonic() + 60
        while not workload.snapshot():
            if time.monotonic() > deadline:
                raise RuntimeError("no write went through HAProxy's write port")
            time.sleep(0.2)

        results = Results()
        lost_ids = set()
        injector = Injector(cluster, rng, args.delay_ms)
        schedule = plan(kinds, args.faults, rng)
        for n, kind in enumerate(schedule, 1):
            time.sleep(2)
            start = time.monotonic()
            target, heal = injector.inject(kind)
            heal()
            healed = time.monotonic()
            ok, detail = wait_converged(cluster, args.converge_timeout)
            end = time.monotonic()
            # The write port must carry writes again before the fault counts as over.
            write_deadline = end + 30
            while not workload.acks_between(end, time.monotonic()) and time.monotonic() < write_deadline:
                time.sleep(0.05)
            end = max(end, min(time.monotonic(), write_deadline))
            lost = verify_acked(cluster, detail, workload, lost_ids) if ok else 0
            overlaps = probes.overlaps(start - 1, end)
            row = dict(kind=kind, target=target, convergence=(end - healed) if ok else None,
                       router_gap=longest_gap(workload.acks_between(start, end), start, end),
                       node_gap=longest_gap(probes.acks_between(start, end), start, end),
                       lost=lost, split_brain=len(overlaps))
            line = (f"{n}/{len(schedule)} {kind} on {target}: "
                    + (f"converged {row['convergence']:.1f} s after healing, primary n{detail + 1}"
                       if ok else f"NOT converged: {detail}")
                    + f"; write gap {row['router_gap']:.2f} s via HAProxy, {row['node_gap']:.2f} s on nodes"
                    + f"; lost {lost}; split-brain {len(overlaps)}")
            results.add(**row, line=line)
            log(line)
            for a, b, lo, hi in overlaps:
                log(f"  SPLIT-BRAIN: n{a + 1} and n{b + 1} both took writes for {hi - lo:.3f} s")
            if not ok:
                cluster.diagnose()
                break
        workload.finish()
        probes.finish()

        acked = len(workload.snapshot())
        commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        versions = "; ".join(
            run(cmd, check=False).stdout.strip().splitlines()[0] if run(cmd, check=False).stdout.strip() else "?"
            for cmd in ([f"{PG_BIN}/postgres", "--version"], ["etcd", "--version"], ["haproxy", "-v"]))
        report = [f"# pgha chaos run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
                  f"pgha at {commit or '?'} ({args.bin_dir}); {versions}; {os.cpu_count()} cores, "
                  f"Linux {os.uname().release}.", "",
                  f"Mode {args.mode}, ttl/loop_wait/retry_timeout {args.settings}, {len(results.rows)} "
                  f"faults (seed {seed}), {args.clients} writers through HAProxy (deploy/haproxy.cfg), "
                  f"probes every {PROBE_INTERVAL * 1000:.0f} ms on each node. Acknowledged writes: "
                  f"{acked}; lost: {len(lost_ids)}; commits with unknown outcome (timed out or "
                  f"connection lost): {workload.unknown}; writes refused by the server: {workload.refused}.", "",
                  "Write gap: the longest time without an acknowledged write from the fault to "
                  "convergence. Convergence: from removing the fault to one primary with every "
                  "replica streaming and the write port taking writes again.", "",
                  results.table(), "",
                  f"Command: `tests/chaos/chaos.py --mode {args.mode} --settings {args.settings} "
                  f"--faults {args.faults} --seed {seed}"
                  + (f" --kinds {','.join(kinds)}" if kinds != FAULT_KINDS else "")
                  + (f" --delay-ms {args.delay_ms}" if args.delay_ms != 200 else "") + "`", "", "## Each fault", "", "```"]
        report += [r["line"] for r in results.rows] + ["```"]
        text = "\n".join(report)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        split = sum(r["split_brain"] for r in results.rows)
        unconverged = sum(1 for r in results.rows if r["convergence"] is None)
        failed = split > 0 or unconverged > 0 or len(results.rows) < len(schedule) or \
            (args.mode != "async" and lost_ids)
        if failed:
            log(f"FAILED: split-brain {split}, not converged {unconverged}, lost {len(lost_ids)}")
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
    except Exception as e:  # report, then clean up
        log(f"chaos: {e}")
    finally:
        if cluster is not None and cluster.haproxy is not None:
            cluster.haproxy.kill()
        net.destroy()
        if cluster is not None:
            cluster.spawner.reap()
        if failed or args.keep_logs:
            logs = tempfile.mkdtemp(prefix="pgha-chaos-logs-")
            shutil.copytree(os.path.join(work, "log"), logs, dirs_exist_ok=True)
            for i in range(NODES):
                node = os.path.join(work, f"n{i + 1}")
                for name in os.listdir(node) if os.path.isdir(node) else []:
                    if name.startswith("postgresql-") and name.endswith(".log"):
                        shutil.copy(os.path.join(node, name), logs)
            log(f"logs kept in {logs}")
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
