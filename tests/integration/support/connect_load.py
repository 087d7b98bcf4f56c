#!/usr/bin/python3
"""A client load through a router port, for switchover and failover tests and the benchmarks.

Each of --clients threads loops until the stop file exists: in --mode connect it connects,
inserts one row, commits and disconnects (a connection-per-transaction application); in
--mode pooled it keeps its connection and reconnects only after an error (a pooled
application). Ids are unique per thread. On exit it prints a JSON summary: acknowledged and
failed transactions, the first error messages, and the longest stall (the longest time any one
client went without an acknowledged commit, from its previous one or from its start).

usage: connect_load.py <port> <stop file> [--clients N] [--mode connect|pooled]
                       [--acked FILE] [--table NAME]      (password in PGPASSWORD)"""
import argparse
import json
import os
import threading
import time

import psycopg2

parser = argparse.ArgumentParser()
parser.add_argument("port")
parser.add_argument("stop")
parser.add_argument("--clients", type=int, default=4)
parser.add_argument("--mode", choices=["connect", "pooled"], default="connect")
parser.add_argument("--acked")
parser.add_argument("--table", default="load_test")
args = parser.parse_args()

lock = threading.Lock()
summary = {"acked": 0, "failed": 0, "errors": [], "longest_stall_s": 0.0}
acked_ids = []


def client(number):
    conn = None
    # Unique across runs on the same table: the start time in the high digits.
    next_id = (int(time.time()) % 1_000_000) * 10_000_000_000 + number * 100_000_000
    last_ok = time.monotonic()
    while not os.path.exists(args.stop):
        next_id += 1
        try:
            if conn is None:
                # The router holds a connection while there is no primary: wait as long as it may.
                conn = psycopg2.connect(host="127.0.0.1", port=args.port, user="postgres",
                                        dbname="postgres", connect_timeout=60)
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {args.table} VALUES (%s)", (next_id,))
            conn.commit()
            if args.mode == "connect":
                conn.close()
                conn = None
        except psycopg2.Error as error:
            with lock:
                summary["failed"] += 1
                if len(summary["errors"]) < 10:
                    summary["errors"].append(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.02)
            continue
        now = time.monotonic()
        with lock:
            summary["acked"] += 1
            summary["longest_stall_s"] = max(summary["longest_stall_s"], now - last_ok)
            acked_ids.append(next_id)
        last_ok = now


threads = [threading.Thread(target=client, args=(i + 1,)) for i in range(args.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if args.acked:
    with open(args.acked, "w") as out:
        out.write("".join(f"{i}\n" for i in acked_ids))
summary["longest_stall_s"] = round(summary["longest_stall_s"], 3)
print(json.dumps(summary))
