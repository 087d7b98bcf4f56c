#!/usr/bin/python3
"""pgha against Patroni (Debian's 3.0.2) in the same topology -- the same etcd members, PostgreSQL
15, HAProxy and generated patroni.yml files (scripts/cluster.sh with PGHA_AGENT=patroni) -- with
the same ttl/loop_wait/retry_timeout, in one run. Run as root (the nodes run as postgres).

For each system and setting, over --trials trials each:
  node crash        kill -9 of the primary's agent and postmaster together: when the new leader
                    key appeared, when HAProxy's write backend had the new primary UP, and the
                    first write on the new primary itself and through the write port
  postmaster crash  kill -9 of the primary's postmaster only: first write through the write port,
                    and whether the timeline changed
  graceful stop     SIGTERM to the primary's agent: first write through the write port
  switchover        planned switchover (pghactl / patronictl --force) under a one-client write
                    load through the write port: failed transactions and the longest write gap
  footprint         RSS and PSS of the three agents (with pgha's fence processes), and their CPU
                    seconds over --footprint-seconds
                    idle and with pgbench (4 clients) writing through the write port
Writes a markdown table (medians, min-max, ratio pgha/Patroni of the medians) to bench/results/.

usage: stack_bench.py [--settings 30/10/10,5/1/2] [--trials 3] [--footprint-seconds 60]
                      [--systems pgha,patroni] [--soak-minutes 0]
                      [--soak-settings 5/1/2,...]
A setting is ttl/loop_wait/retry_timeout; a system that cannot run a setting (Patroni refuses
loop_wait below 1) is reported as such."""
import argparse
import base64
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psycopg2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(REPO, "scripts", "cluster.sh")
BIN = os.path.join(REPO, "build", "release", "apps")
WRITE_LOAD = os.path.join(REPO, "tests", "integration", "support", "write_load.py")
PG_BIN = "/usr/lib/postgresql/15/bin"


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_ports():
    for _ in range(100):
        b, p, r, w = (random.randrange(base, base + 4500) for base in (10000, 15000, 20000, 25000))
        ports = [b, b + 1, b + 100, b + 101, b + 200, b + 201, p, p + 1, p + 2, r, r + 1, r + 2]
        ports += [w + k for k in range(7)]
        if all(port_free(x) for x in ports):
            return dict(etcd=b, pg=p, rest=r, write=w)
    sys.exit("no free ports")


class Topology:
    def __init__(self, system, ttl, loop_wait, retry_timeout, router="haproxy"):
        self.system = system
        self.router = router
        self.work = tempfile.mkdtemp(prefix="pgha-stackbench.")
        os.chmod(self.work, 0o755)
        self.ports = pick_ports()
        p = self.ports
        with open(os.path.join(self.work, "env"), "w") as f:
            f.write(f"""POSTGRES_PORT={p['pg']}
POSTGRES_WRITE_HOST_PORT={p['write']}
POSTGRES_READ_HOST_PORT={p['write'] + 1}
ETCD_CLIENT_PORT={p['etcd']}
ETCD_PEER_PORT={p['etcd'] + 1}
PATRONI_RESTAPI_PORT={p['rest']}
HAPROXY_METRICS_HOST_PORT={p['write'] + 2}
PROMETHEUS_PORT={p['write'] + 3}
POSTGRES_EXPORTER_PORT={p['write'] + 4}
SCOPE=pg-ha
PGHA_BIND_HOST=127.0.0.1
PGHA_TTL={ttl}
PGHA_LOOP_WAIT={loop_wait}
PGHA_RETRY_TIMEOUT={retry_timeout}
""")
        self.state = os.path.join(self.work, "state")
        self.env = dict(os.environ, PGHA_STATE_DIR=self.state,
                        PGHA_ENV_FILE=os.path.join(self.work, "env"),
                        PGHA_ENV_POSTGRES_FILE=os.path.join(self.work, "env.postgres"),
                        PGHA_BIN_DIR=BIN, PGHA_AGENT=system, PGHA_ROUTER=router,
                        PGHA_HEALTH_TIMEOUT="300")
        self.password = None

    def cluster(self, command):
        out = subprocess.run([CLUSTER, command], env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"cluster.sh {command} ({self.system}) failed:\n{out.stdout[-3000:]}")
        if self.password is None:
            for line in open(os.path.join(self.work, "env.postgres")):
                if line.startswith("POSTGRES_PASSWORD="):
                    self.password = line.strip().split("=", 1)[1]

    def destroy(self, keep_logs_in=None):
        if keep_logs_in:
            shutil.copytree(os.path.join(self.state, "log"), keep_logs_in, dirs_exist_ok=True)
        subprocess.run([CLUSTER, "clean"], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["pkill", "-KILL", "-f", self.work + "/"], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.work, ignore_errors=True)

    def rest(self, i):
        return self.ports["rest"] + i

    def pg(self, i):
        return self.ports["pg"] + i

    def http(self, method, url, timeout=1.0):
        try:
            req = urllib.request.Request(url, method=method)
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""
        except Exception:
            return 0, b""

    def primary(self):
        for i in range(3):
            if self.http("OPTIONS", f"http://127.0.0.1:{self.rest(i)}/primary")[0] == 200:
                return i
        return None

    def timeline(self, i):
        status, body = self.http("GET", f"http://127.0.0.1:{self.rest(i)}/patroni")
        return json.loads(body).get("timeline") if status == 200 else None

    def leader_key(self):
        key = base64.b64encode(b"/service/pg-ha/leader").decode()
        data = json.dumps({"key": key}).encode()
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{self.ports['etcd']}/v3/kv/range",
                                         data=data, method="POST")
            with urllib.request.urlopen(req, timeout=1) as r:
                kvs = json.load(r).get("kvs", [])
            return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
        except Exception:
            return None

    def router_primaries(self):
        if self.router == "pgha":
            status, body = self.http("GET", f"http://127.0.0.1:{self.ports['write'] + 2}/metrics")
            return {line.split('"')[1] for line in body.decode(errors="replace").splitlines()
                    if line.startswith("pgha_router_primary{")}
        status, body = self.http("GET", f"http://127.0.0.1:{self.ports['write'] + 2}/;csv")
        up = set()
        for line in body.decode(errors="replace").splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "primary" and f[1].startswith("pg-") and f[17].startswith("UP"):
                up.add(f[1])
        return up

    def try_write(self, port):
        """The port of the PostgreSQL that committed a write, or None."""
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                    password=self.password, connect_timeout=2)
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO bench_writes VALUES (now())")
                    cur.execute("SELECT inet_server_port()")
                    server = cur.fetchone()[0]
                conn.commit()
                return server
            finally:
                conn.close()
        except psycopg2.Error:
            return None

    def sql(self, port, statement, fetch=False):
        """Runs a statement, retrying for 30 s through a failover or a router switch."""
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                        dbname="postgres", password=self.password,
                                        connect_timeout=5)
                try:
                    conn.autocommit = True
                    with conn.cursor() as cur:
                        cur.execute(statement)
                        return cur.fetchall() if fetch else None
                finally:
                    conn.close()
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def agent_pid(self, i):
        return int(open(os.path.join(self.state, "run", f"pg-{i}.pid")).read().split()[0])

    def postmaster_pid(self, i):
        return int(open(os.path.join(self.state, f"pg-{i}", "data", "postmaster.pid")).readline())

    def ctl(self, *args):
        if self.system == "pgha":
            cmd = [os.path.join(BIN, "pghactl")]
        else:
            cmd = ["patronictl"]
        cmd += ["-c", os.path.join(self.state, "config", "pg-0.yml"), *args]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120)

    def healthy(self):
        """One primary, two replicas that stream from it with nothing left to replay (a trial
        starts only then, for both systems alike), HAProxy routing writes to the primary."""
        roles = [self.http("OPTIONS", f"http://127.0.0.1:{self.rest(i)}/{r}")[0] == 200
                 for i in range(3) for r in ("primary", "replica")]
        if not (sum(roles[0::2]) == 1 and sum(roles[1::2]) == 2 and len(self.router_primaries()) == 1):
            return False
        try:
            rows = self.sql(self.ports["write"], "SELECT pg_is_in_recovery(), (SELECT count(*) "
                            "FROM pg_stat_replication WHERE state = 'streaming' AND "
                            "replay_lsn = pg_current_wal_lsn())", fetch=True)
            return rows[0] == (False, 2)
        except psycopg2.Error:
            return False

    def wait_healthy(self, seconds=300):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.healthy():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.system}: cluster not healthy within {seconds}s")


def fault_trial(topo, kind):
    topo.wait_healthy()
    topo.sql(topo.ports["write"], "CREATE TABLE IF NOT EXISTS bench_writes (t timestamptz)")
    topo.wait_healthy()  # the replicas have replayed it
    old = topo.primary()
    old_name = f"pg-{old}"
    timeline_before = topo.timeline(old)
    agent, postmaster = topo.agent_pid(old), topo.postmaster_pid(old)
    t0 = time.monotonic()
    if kind == "node crash":
        os.kill(agent, signal.SIGKILL)
        os.kill(postmaster, signal.SIGKILL)
    elif kind == "postmaster crash":
        os.kill(postmaster, signal.SIGKILL)
    else:
        os.kill(agent, signal.SIGTERM)
    result = {}
    wanted = {"write (router)"}
    if kind != "postmaster crash":
        wanted |= {"leader key", "router switched", "write (node)"}
    # After a crash or stop of the node, only a write on another server counts (the old primary
    # may still take writes while it shuts down); after a postmaster crash, any server's.
    old_port = topo.pg(old) if kind != "postmaster crash" else None

    def new_leader_key():
        name = topo.leader_key()
        return name and name != old_name

    def router_switched():
        up = topo.router_primaries()
        return len(up) == 1 and old_name not in up

    def node_write():
        return any(topo.try_write(topo.pg(i)) for i in range(3) if i != old)

    def router_write():
        server = topo.try_write(topo.ports["write"])
        return server is not None and server != old_port

    probes = {"leader key": new_leader_key, "router switched": router_switched,
              "write (node)": node_write, "write (router)": router_write}
    lock = threading.Lock()

    def run_probe(name, probe):
        # Each probe polls on its own thread, so one that blocks (a connect timing out) does not
        # delay another's reading.
        while time.monotonic() - t0 < 180:
            if probe():
                with lock:
                    result[name] = time.monotonic() - t0
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=run_probe, args=(name, probes[name])) for name in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    topo.cluster("up")  # restarts the dead agent; it rejoins
    topo.wait_healthy()
    if kind == "postmaster crash":
        new = topo.primary()
        result["new timeline"] = 1.0 if (new != old or topo.timeline(new) != timeline_before) else 0.0
    return result


def switchover_trial(topo):
    topo.wait_healthy()
    old = topo.primary()
    topo.sql(topo.ports["write"], "CREATE TABLE IF NOT EXISTS load_test (id bigint PRIMARY KEY)")
    topo.sql(topo.ports["write"], "TRUNCATE load_test")
    acked = os.path.join(topo.work, "acked")
    stop = os.path.join(topo.work, "stop")
    if os.path.exists(stop):
        os.unlink(stop)
    load = subprocess.Popen(["/usr/bin/python3", WRITE_LOAD, str(topo.ports["write"]), acked, stop],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PGPASSWORD=topo.password))
    time.sleep(3)
    out = topo.ctl("switchover", "--leader", f"pg-{old}", "--force")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = topo.primary()
        if new is not None and new != old and topo.try_write(topo.ports["write"]):
            break
        time.sleep(0.2)
    time.sleep(3)
    open(stop, "w").close()
    summary = json.loads(load.communicate(timeout=60)[0])
    if out.returncode != 0:
        raise RuntimeError(f"switchover failed: {out.stdout}")
    ids = {int(x) for x in open(acked).read().split()}
    stored = {row[0] for row in topo.sql(topo.ports["write"], "SELECT id FROM load_test", fetch=True)}
    return {"failed transactions": float(summary["failed"]),
            "longest write gap": float(summary["longest_gap_s"]),
            "acknowledged rows lost": float(len(ids - stored))}


def proc_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid, key, path="status"):
    for line in open(f"/proc/{pid}/{path}"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def fence_pids(topo):
    """pgha's fence processes (pgha-fence <data dir>) belong to its footprint."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"pgha-fence") and len(args) > 1 and \
                args[1].decode(errors="replace").startswith(topo.state):
            found.append(int(entry))
    return found


def footprint(topo, seconds):
    topo.wait_healthy()
    pids = [topo.agent_pid(i) for i in range(3)] + fence_pids(topo)
    result = {}
    cpu0 = sum(proc_cpu(p) for p in pids)
    time.sleep(seconds)
    result["agents CPU idle (s)"] = sum(proc_cpu(p) for p in pids) - cpu0
    env = dict(os.environ, PGPASSWORD=topo.password)
    common = ["-h", "127.0.0.1", "-p", str(topo.ports["write"]), "-U", "postgres"]
    subprocess.run([f"{PG_BIN}/pgbench", "-i", "-q", "-s", "5", *common, "postgres"], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0 = sum(proc_cpu(p) for p in pids)
    subprocess.run([f"{PG_BIN}/pgbench", "-c", "4", "-j", "2", "-T", str(seconds), *common,
                    "postgres"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result["agents CPU under load (s)"] = sum(proc_cpu(p) for p in pids) - cpu0
    result["agents RSS (MiB)"] = sum(proc_kib(p, "VmRSS") for p in pids) / 1024
    result["agents PSS (MiB)"] = sum(proc_kib(p, "Pss", "smaps_rollup") for p in pids) / 1024
    return result


def soak(topo, minutes):
    """Both cores saturated by pgbench through the write port; counts leader changes."""
    topo.wait_healthy()
    env = dict(os.environ, PGPASSWORD=topo.password)
    common = ["-h", "127.0.0.1", "-p", str(topo.ports["write"]), "-U", "postgres"]
    subprocess.run([f"{PG_BIN}/pgbench", "-i", "-q", "-s", "5", *common, "postgres"], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench = subprocess.Popen([f"{PG_BIN}/pgbench", "-c", "8", "-j", "2", "-T", str(minutes * 60),
                              *common, "postgres"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    changes, leader = 0, topo.leader_key()
    while bench.poll() is None:
        now = topo.leader_key()
        if now and leader and now != leader:
            changes += 1
        leader = now or leader
        time.sleep(0.5)
    return {"unplanned leader changes in soak": float(changes)}


def run_system(system, setting, args, log):
    ttl, loop_wait, retry = setting
    topo = Topology(system, ttl, loop_wait, retry)
    samples = {}

    def add(result):
        for k, v in result.items():
            samples.setdefault(k, []).append(v)

    try:
        t = time.monotonic()
        topo.cluster("up")
        log(f"  {system} {setting}: up in {time.monotonic() - t:.0f} s")
        for kind in ("node crash", "postmaster crash", "graceful stop"):
            for n in range(args.trials):
                r = fault_trial(topo, kind)
                log(f"  {system} {kind} #{n + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                add({f"{kind}: {k}": v for k, v in r.items()})
        for n in range(args.trials):
            r = switchover_trial(topo)
            log(f"  {system} switchover #{n + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
            add({f"switchover: {k}": v for k, v in r.items()})
        if args.footprint_seconds > 0:
            r = footprint(topo, args.footprint_seconds)
            log(f"  {system} footprint: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
            add({f"footprint: {k}": v for k, v in r.items()})
        if args.soak_minutes > 0 and setting in args.soak_settings:
            r = soak(topo, args.soak_minutes)
            log(f"  {system} soak {args.soak_minutes} min: {r}")
            add({f"soak {args.soak_minutes} min: {k}": v for k, v in r.items()})
    except Exception as e:  # a system that cannot run a setting is reported, not hidden
        # Outside the repository: a failing agent can log a gigabyte (Patroni at loop_wait 0.5).
        logs = os.path.join(tempfile.gettempdir(), f"pgha-stackbench-logs-{system}-{'-'.join(map(str, setting))}")
        log(f"  {system} {setting}: FAILED: {e} (logs kept in {logs})")
        samples["error"] = str(e)
        topo.destroy(keep_logs_in=logs)
        return samples
    topo.destroy()
    return samples


def versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.splitlines()[0].strip()
        except Exception:
            return "?"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Linux {platform.release()}",
        "pgha": first_line([os.path.join(BIN, "pgha"), "--version"]),
        "patroni": first_line(["patroni", "--version"]),
        "postgres": first_line([f"{PG_BIN}/postgres", "--version"]),
        "etcd": first_line(["etcd", "--version"]),
        "haproxy": first_line(["haproxy", "-v"]),
    }


def fmt(values):
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def write_table(path, started, args, v, settings, results, lines):
    with open(path, "w") as f:
        f.write(f"# pgha vs Patroni + HAProxy, {started:%Y-%m-%d %H:%M} UTC\n\n")
        f.write(f"`bench/stack_bench.py --settings {args.settings} --systems {args.systems} "
                f"--trials {args.trials} --footprint-seconds {args.footprint_seconds} "
                f"--soak-minutes {args.soak_minutes} --soak-settings {args.soak_settings_text}`\n\n")
        for k, val in v.items():
            f.write(f"- {k}: {val}\n")
        f.write("\nSeconds from the fault unless named otherwise; median (min–max) over the trials; "
                "ratio = pgha median / Patroni median (below 1: pgha is faster or smaller). "
                "Both systems run the same etcd, PostgreSQL, HAProxy (the seed's checks: every 3 s, "
                "down after 3 failures, up after 2 — deploy/haproxy.cfg) and patroni.yml.\n")
        for setting in settings:
            f.write(f"\n## ttl {setting[0]}, loop_wait {setting[1]}, retry_timeout {setting[2]}\n\n")
            pg, pa = results.get(("pgha", setting), {}), results.get(("patroni", setting), {})
            for name, r in (("pgha", pg), ("Patroni", pa)):
                if "error" in r:
                    f.write(f"- {name} failed at this setting: {r['error'].splitlines()[0]}\n")
            f.write("\n| measure | pgha | Patroni | ratio |\n|---|---|---|---|\n")
            keys = [k for k in list(pg) + [k for k in pa if k not in pg] if k != "error"]
            for k in keys:
                a, b = pg.get(k, []), pa.get(k, [])
                ratio = "—"
                if a and b and statistics.median(b) > 0:
                    ratio = f"{statistics.median(a) / statistics.median(b):.2f}"
                f.write(f"| {k} | {fmt(a)} | {fmt(b)} | {ratio} |\n")
        f.write("\n## Log\n\n```\n" + "\n".join(lines) + "\n```\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default="30/10/10,5/1/2")
    parser.add_argument("--systems", default="pgha,patroni")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--footprint-seconds", type=int, default=60)
    parser.add_argument("--soak-minutes", type=int, default=0)
    parser.add_argument("--soak-settings", default="all",
                        help="the settings to soak (a soak at the defaults proves little)")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the nodes run as the postgres user")
    settings = [tuple(float(x) if "." in x else int(x) for x in s.split("/"))
                for s in args.settings.split(",")]
    systems = args.systems.split(",")
    args.soak_settings_text = args.soak_settings
    args.soak_settings = settings if args.soak_settings == "all" else [
        tuple(float(x) if "." in x else int(x) for x in s.split("/"))
        for s in args.soak_settings.split(",")]
    subprocess.run(["cmake", "--preset", "release", "-G", "Ninja"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count())],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    started = datetime.datetime.now(datetime.timezone.utc)
    lines = []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    results = {}
    v = versions()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{started:%Y-%m-%d-%H%M}-stack.md")
    # The table is written again after every system and setting, so an interrupted run keeps
    # what it measured.
    for setting in settings:
        for system in systems:
            log(f"== {system} at ttl/loop_wait/retry_timeout {'/'.join(map(str, setting))}")
            results[(system, setting)] = run_system(system, setting, args, log)
            write_table(path, started, args, v, settings, results, lines)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
