#!/usr/bin/python3
"""Acknowledged writes missing on the primary: reads the ids a load client recorded as committed
(one per line) and the ids in table load_test through the given port, and prints
"<acknowledged> <missing>".

usage: lost_ids.py <acked-ids file> <port>   (password in PGPASSWORD)"""
import sys

import psycopg2

acked = {int(line) for line in open(sys.argv[1]) if line.strip()}
conn = psycopg2.connect(host="127.0.0.1", port=sys.argv[2], user="postgres", dbname="postgres")
with conn.cursor() as cur:
    cur.execute("SELECT id FROM load_test")
    present = {row[0] for row in cur}
print(len(acked), len(acked - present))
