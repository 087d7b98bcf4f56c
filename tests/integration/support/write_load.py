#!/usr/bin/python3
"""A write load for switchover tests: one client inserts increasing ids through the write port,
one transaction each, and records every id whose COMMIT was acknowledged. On exit it prints a
JSON summary: acknowledged and failed transactions and the longest gap between two
acknowledged commits (the write-unavailability window).

usage: write_load.py <port> <acked-ids file> <stop file>   (password in PGPASSWORD)"""
import json
import os
import sys
import time

import psycopg2

port, acked_path, stop_path = sys.argv[1], sys.argv[2], sys.argv[3]
acked = open(acked_path, "w")
next_id, failures, longest_gap, count = 0, 0, 0.0, 0
last_ok = None
conn = None
while not os.path.exists(stop_path):
    next_id += 1
    try:
        if conn is None:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                    connect_timeout=2)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO load_test VALUES (%s)", (next_id,))
        conn.commit()
    except psycopg2.Error:
        failures += 1
        try:
            conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.02)
        continue
    now = time.monotonic()
    if last_ok is not None:
        longest_gap = max(longest_gap, now - last_ok)
    last_ok = now
    count += 1
    acked.write("%d\n" % next_id)
    acked.flush()
print(json.dumps({"acknowledged": count, "failed": failures, "longest_gap_s": round(longest_gap, 2)}))
