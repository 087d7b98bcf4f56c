#!/usr/bin/env bash
# Operating a running cluster (issue 5), each verb with pgha's pghactl and with Debian's
# patronictl 3.0.2 against the same pgha nodes:
#   planned switchover under a write load through the write port (no acknowledged row lost, the
#   old leader rejoins without pg_rewind; the write gap and failed transactions are printed)
#   -> switchover to any member -> scheduled switchover fires at its time -> a scheduled one is
#   withdrawn with flush -> failover to a named replica -> refusals carry their reasons ->
#   reload of a member's patroni.yml -> version -> remove of a cluster's keys.
# The write and read ports are HAProxy's here (ROUTER=haproxy); topology_test.sh and
# router_test.sh cover pgha-router.
# usage: operations_test.sh <directory holding pgha and pghactl>
set -euo pipefail
BIN=$(cd "$1" && pwd)
. "$(dirname "$0")/support/topology_lib.sh"
SUPPORT=$REPO/tests/integration/support
PY=/usr/bin/python3  # Debian's python, with psycopg2

pick_ports
write_env "$PGHA_ENV_FILE" "$ETCD" "$PG" "$REST" "$WRITE" "$READ" "$STATS"
CTL=("$BIN/pghactl" -c "$PGHA_STATE_DIR/config/pg-0.yml")
require_tool patronictl "Debian's patroni package"
# This test keeps HAProxy, the documented alternative to pgha-router, covered: the same
# switchovers and failovers through its checks.
export ROUTER=haproxy
PCTL=(patronictl -c "$PGHA_STATE_DIR/config/pg-0.yml")

step "up (etcd $ETCD, PostgreSQL $PG, REST $REST, write $WRITE)"
"$CLUSTER" up >/dev/null || fail "cluster.sh up failed"
set -a
. "$PGHA_ENV_POSTGRES_FILE"
set +a
export PGPASSWORD=$POSTGRES_PASSWORD

replicas_of() {  # leader -> the other two names, sorted
  for n in pg-0 pg-1 pg-2; do [ "$n" = "$1" ] || echo "$n"; done
}
# The first / last of them. (Not `replicas_of | head -1`: with pipefail, head closing the pipe
# early can fail the assignment with SIGPIPE and stop the test.)
first_replica_of() { local r; r=($(replicas_of "$1")); echo "${r[0]}"; }
last_replica_of() { local r; r=($(replicas_of "$1")); echo "${r[1]}"; }
writes_work() { sql "$WRITE" "SELECT NOT pg_is_in_recovery()" | has -x t; }

eventually 60 "the cluster settles" settled

step "planned switchover under a write load through $WRITE: no acknowledged row is lost"
sql "$WRITE" "CREATE TABLE load_test(id bigint PRIMARY KEY)" >/dev/null || fail "create load_test"
old=$(leader_now)
candidate=$(first_replica_of "$old")
rewinds_before=$(rewinds "$old")
$PY "$SUPPORT/write_load.py" "$WRITE" "$WORK/acked" "$WORK/stop" >"$WORK/load.json" &
LOAD_PID=$!
sleep 3
started=$SECONDS
out=$("${CTL[@]}" switchover pg-ha --leader "$old" --candidate "$candidate" --force) ||
  fail "pghactl switchover: $out"
grep -q "Successfully switched over to \"$candidate\"" <<<"$out" || fail "pghactl switchover: $out"
echo "pghactl switchover returned after $((SECONDS - started)) s"
eventually 60 "$old rejoins and the cluster settles" settled
eventually 60 "writes through $WRITE reach $candidate" writes_work
sleep 2
touch "$WORK/stop"
wait "$LOAD_PID" || fail "the write load failed"
echo "write load across the switchover: $(cat "$WORK/load.json")"
sql "$((PG + ${candidate#pg-}))" "SELECT id FROM load_test" | sort -n >"$WORK/present"
lost=$(sort -n "$WORK/acked" | comm -23 - "$WORK/present" | wc -l)
echo "acknowledged rows lost: $lost of $(wc -l <"$WORK/acked")"
[ "$lost" = 0 ] || fail "$lost acknowledged rows are missing on the new primary"
[ "$(wc -l <"$WORK/acked")" -gt 10 ] || fail "the write load acknowledged almost nothing"
[ "$(rewinds "$old")" = "$rewinds_before" ] || fail "$old needed pg_rewind after a planned switchover"
"${CTL[@]}" history | has "$candidate" || fail "history does not record the switchover"

step "switchover to any member (pghactl), to a named one (patronictl), to any (patronictl)"
old=$(leader_now)
out=$("${CTL[@]}" switchover pg-ha --force) || fail "pghactl switchover to any: $out"
grep -q "Successfully switched over to" <<<"$out" || fail "pghactl switchover to any: $out"
[ "$(leader_now)" != "$old" ] || fail "the leader is still $old"
eventually 60 "the cluster settles" settled
old=$(leader_now)
candidate=$(last_replica_of "$old")
out=$("${PCTL[@]}" switchover pg-ha --leader "$old" --candidate "$candidate" --force) ||
  fail "patronictl switchover: $out"
grep -q "Successfully switched over to \"$candidate\"" <<<"$out" || fail "patronictl switchover: $out"
eventually 60 "the cluster settles" settled
old=$(leader_now)
out=$("${PCTL[@]}" switchover pg-ha --force) || fail "patronictl switchover to any: $out"
grep -q "Successfully switched over to" <<<"$out" || fail "patronictl switchover to any: $out"
[ "$(leader_now)" != "$old" ] || fail "the leader is still $old"
eventually 60 "the cluster settles" settled

step "patronictl edit-config against pgha: the change reaches every node"
"${PCTL[@]}" edit-config pg-ha -p work_mem=5MB --force >/dev/null || fail "patronictl edit-config"
every_node_5mb() {
  local i
  for i in 0 1 2; do [ "$(sql "$((PG + i))" "SHOW work_mem")" = 5MB ] || return 1; done
}
eventually 30 "work_mem 5MB on every node" every_node_5mb

step "a scheduled switchover fires at its time (pghactl)"
old=$(leader_now)
candidate=$(last_replica_of "$old")
at_epoch=$(($(date +%s) + 8))
at=$(date -u -d "@$at_epoch" +%Y-%m-%dT%H:%M:%S+00:00)
out=$("${CTL[@]}" switchover pg-ha --candidate "$candidate" --scheduled "$at" --force) ||
  fail "scheduled switchover: $out"
grep -q "Switchover scheduled" <<<"$out" || fail "scheduled switchover: $out"
"${CTL[@]}" list | has "Switchover scheduled at:" || fail "list does not show the scheduled switchover"
[ "$(leader_now)" = "$old" ] || fail "the switchover ran before its time"
eventually 40 "the switchover to $candidate happens" leader_is "$candidate"
[ "$(date +%s)" -ge "$at_epoch" ] || fail "the switchover ran before $at"
eventually 60 "the cluster settles" settled

step "a scheduled switchover is withdrawn with flush"
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S+00:00)
out=$("${PCTL[@]}" switchover pg-ha --candidate "$old" --scheduled "$later" --force) ||
  fail "patronictl scheduled switchover: $out"
grep -q "Switchover scheduled" <<<"$out" || fail "scheduling: $out"
out=$("${CTL[@]}" flush pg-ha switchover) || fail "pghactl flush: $out"
grep -q "Success: scheduled switchover deleted" <<<"$out" || fail "pghactl flush: $out"
"${CTL[@]}" list | has "Switchover scheduled" && fail "the switchover is still scheduled"
out=$("${CTL[@]}" flush pg-ha switchover)
grep -q "No pending scheduled switchover" <<<"$out" || fail "second flush: $out"

step "a scheduled restart runs at its time (pghactl); another is flushed (patronictl flush)"
replica=$(first_replica_of "$(leader_now)")
rapi=http://127.0.0.1:$((REST + ${replica#pg-}))
start_time() { curl -s -m 5 "$rapi/patroni" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("postmaster_start_time", ""))'; }
before=$(start_time)
at=$(date -u -d "@$(($(date +%s) + 6))" +%Y-%m-%dT%H:%M:%S+00:00)
out=$("${CTL[@]}" restart pg-ha "$replica" --scheduled "$at" --force) || fail "scheduled restart: $out"
grep -q "Success: restart scheduled on member $replica" <<<"$out" || fail "scheduled restart: $out"
list_shows_schedule() { "${CTL[@]}" list | has "Scheduled restart"; }
curl -s "$rapi/patroni" | has '"scheduled_restart"' || fail "/patroni does not show it"
eventually 10 "list shows the scheduled restart" list_shows_schedule
restarted() { local now; now=$(start_time); [ -n "$now" ] && [ "$now" != "$before" ]; }
eventually 40 "$replica restarts at $at" restarted
list_shows_schedule && fail "the done restart is still shown"
out=$("${CTL[@]}" restart pg-ha "$replica" --scheduled "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%S+00:00)" --force) ||
  fail "second scheduled restart: $out"
grep -q "restart scheduled" <<<"$out" || fail "second scheduled restart: $out"
eventually 10 "the member key shows the schedule" list_shows_schedule
out=$("${PCTL[@]}" flush pg-ha "$replica" restart --force) || fail "patronictl flush: $out"
grep -q "Success: flush scheduled restart for member $replica" <<<"$out" || fail "flush restart: $out"
curl -s "$rapi/patroni" | has '"scheduled_restart"' && fail "the restart is still scheduled"
eventually 60 "the cluster settles" settled

step "failover to a named replica (pghactl, then patronictl)"
old=$(leader_now)
candidate=$(first_replica_of "$old")
out=$("${CTL[@]}" failover pg-ha --candidate "$candidate" --force) || fail "pghactl failover: $out"
grep -q "Successfully failed over to \"$candidate\"" <<<"$out" || fail "pghactl failover: $out"
eventually 60 "the cluster settles" settled
old=$(leader_now)
candidate=$(last_replica_of "$old")
out=$("${PCTL[@]}" failover pg-ha --candidate "$candidate" --force) || fail "patronictl failover: $out"
grep -q "Successfully failed over to \"$candidate\"" <<<"$out" || fail "patronictl failover: $out"
eventually 60 "the cluster settles" settled

step "refusals carry their reasons"
leader=$(leader_now)
api=http://127.0.0.1:$((REST + ${leader#pg-}))
auth=(-u "$RESTAPI_USER:$RESTAPI_PASSWORD")
out=$(curl -s -w ' %{http_code}' "${auth[@]}" -X POST -d '{"leader": "pg-9"}' "$api/switchover")
[ "$out" = "leader name does not match 412" ] || fail "wrong leader: $out"
out=$(curl -s -w ' %{http_code}' "${auth[@]}" -X POST -d "{\"leader\": \"$leader\", \"candidate\": \"pg-9\"}" "$api/switchover")
[ "$out" = "candidate does not exists 412" ] || fail "unknown candidate: $out"
out=$("${CTL[@]}" switchover pg-ha --leader pg-9 --force 2>&1) && fail "a wrong leader was accepted"
grep -q "Error: Member pg-9 is not the leader of cluster pg-ha" <<<"$out" || fail "pghactl: $out"
out=$(printf '\n\n\nn\n' | "${CTL[@]}" switchover pg-ha 2>&1) && fail "a declined switchover went ahead"
grep -q "Are you sure you want to switchover cluster pg-ha, demoting current leader $leader?" <<<"$out" ||
  fail "no confirmation asked: $out"
grep -q "Error: Aborting switchover" <<<"$out" || fail "declining did not abort: $out"
[ "$(leader_now)" = "$leader" ] || fail "the leader changed after a declined switchover"

step "reload: a member's patroni.yml change takes effect (pghactl reload, patronictl reload)"
conf=$PGHA_STATE_DIR/config/pg-1.yml
sed -i 's/^postgresql:$/postgresql:\n  parameters:\n    work_mem: 7MB/' "$conf"
out=$("${CTL[@]}" reload pg-ha pg-1 --force) || fail "pghactl reload: $out"
grep -q "Reload request received for member pg-1" <<<"$out" || fail "pghactl reload: $out"
work_mem_is() { [ "$(sql "$((PG + 1))" "SHOW work_mem")" = "$1" ]; }
eventually 20 "work_mem 7MB on pg-1" work_mem_is 7MB
sed -i 's/work_mem: 7MB/work_mem: 6MB/' "$conf"
out=$("${PCTL[@]}" reload pg-ha pg-1 --force) || fail "patronictl reload: $out"
grep -q "Reload request received for member pg-1" <<<"$out" || fail "patronictl reload: $out"
eventually 20 "work_mem 6MB on pg-1" work_mem_is 6MB
sed -i 's/^name: pg-1$/name: renamed/' "$conf"
"${CTL[@]}" reload pg-ha pg-1 --force >/dev/null || fail "reload with a renamed member"
eventually 20 "the rename is refused with a warning" grep -q "a change of name needs a restart" "$PGHA_STATE_DIR/log/pg-1.log"
sed -i 's/^name: renamed$/name: pg-1/' "$conf"

step "callbacks: on_reload, on_restart, on_role_change with Patroni's arguments"
install -d -o postgres -g postgres "$WORK/callbacks"
cb=$WORK/callbacks/record.sh
printf '#!/bin/sh\necho "$*" >> %s/calls\n' "$WORK/callbacks" >"$cb"
chmod 0755 "$cb"
cb_conf="  callbacks:\n    on_start: $cb\n    on_stop: $cb\n    on_restart: $cb\n    on_reload: $cb\n    on_role_change: $cb"
sed -i "s|^postgresql:\$|postgresql:\n$cb_conf|" "$conf"
"${CTL[@]}" reload pg-ha pg-1 --force >/dev/null || fail "reload with callbacks"
role1=replica
[ "$(leader_now)" = pg-1 ] && role1=master
called() { grep -qx "$1" "$WORK/callbacks/calls" 2>/dev/null; }
eventually 20 "on_reload called on pg-1" called "on_reload $role1 pg-ha"
"${CTL[@]}" restart pg-ha pg-1 --force >/dev/null || fail "restart pg-1"
eventually 20 "on_restart called on pg-1" called "on_restart $role1 pg-ha"
eventually 60 "the cluster settles after the restart" settled
if [ "$role1" = master ]; then
  "${CTL[@]}" switchover pg-ha --force >/dev/null || fail "switchover away from pg-1"
  eventually 30 "on_stop, then on_role_change replica on pg-1" called "on_role_change replica pg-ha"
  called "on_stop master pg-ha" || fail "no on_stop before the role change: $(cat "$WORK/callbacks/calls")"
else
  "${CTL[@]}" switchover pg-ha --candidate pg-1 --force >/dev/null || fail "switchover to pg-1"
  eventually 30 "on_role_change master on pg-1" called "on_role_change master pg-ha"
fi
eventually 60 "the cluster settles" settled
echo "callbacks seen: $(tr '\n' ';' <"$WORK/callbacks/calls")"

step "replicatefrom: a replica cascades from another (tag set by reload), then back to the leader"
leader=$(leader_now)
pair=($(replicas_of "$leader"))
first=${pair[0]} second=${pair[1]}
second_conf=$PGHA_STATE_DIR/config/$second.yml
sed -i "s/^tags:\$/tags:\n  replicatefrom: $first/" "$second_conf"
"${CTL[@]}" reload pg-ha "$second" --force >/dev/null || fail "reload $second"
streams_from() {  # source replica -> the names streaming from source
  curl -s -m 5 "http://127.0.0.1:$((REST + ${1#pg-}))/patroni" | $PY -c '
import json, sys
print(" ".join(sorted(r["application_name"] for r in json.load(sys.stdin).get("replication", []) if r.get("state") == "streaming")))'
}
cascading() { [ "$(streams_from "$first")" = "$second" ] && [ "$(streams_from "$leader")" = "$first" ]; }
eventually 30 "$second streams from $first, $first from $leader" cascading
"${CTL[@]}" topology | has "^|   + $second " || fail "topology does not show the cascade: $("${CTL[@]}" topology)"
# HAProxy follows the last switchover only after its checks: for a few seconds the demoted
# primary can still be UP beside the new one, and a write routed to it fails (read-only). The
# write is retried until it lands; what this step checks is the cascade.
cascade_write() { sql "$WRITE" "INSERT INTO load_test VALUES (-1) ON CONFLICT DO NOTHING" >/dev/null; }
eventually 30 "a write through $WRITE for the cascade" cascade_write
cascaded_row() { [ "$(sql "$((PG + ${second#pg-}))" "SELECT count(*) FROM load_test WHERE id = -1")" = 1 ]; }
eventually 20 "the row reaches $second through $first" cascaded_row
sed -i "/^  replicatefrom: $first\$/d" "$second_conf"
"${CTL[@]}" reload pg-ha "$second" --force >/dev/null || fail "reload $second"
eventually 30 "the cluster settles with $second back on the leader" settled

step "/metrics of every node and HAProxy's pass promtool check metrics"
for i in 0 1 2; do
  curl -s "http://127.0.0.1:$((REST + i))/metrics" >"$WORK/metrics-$i" || fail "GET /metrics on pg-$i"
  promtool check metrics <"$WORK/metrics-$i" || fail "promtool rejects pg-$i's /metrics"
  grep -q "^patroni_postgres_running{scope=\"pg-ha\",name=\"pg-$i\"} 1$" "$WORK/metrics-$i" ||
    fail "pg-$i's /metrics does not say PostgreSQL runs"
done
[ "$(cat "$WORK"/metrics-* | grep -c '^patroni_primary{.*} 1$')" = 1 ] || fail "not exactly one patroni_primary 1"
cat "$WORK"/metrics-* | has '^pgha_promotions_total{.*kind="switchover"} [1-9]' ||
  fail "no switchover promotion counted"
echo "last promotion / handover per node (s): $(grep -h '^pgha_last_\(promotion\|handover\)_duration_seconds' "$WORK"/metrics-* | sed 's/{scope="pg-ha",name=/ /; s/}//' | tr '\n' ';')"
curl -s "http://127.0.0.1:$STATS/metrics" >"$WORK/metrics-haproxy"
# HAProxy 2.6's own output parses but has one lint finding (haproxy_process_failed_resolutions is
# a counter without _total), which is HAProxy's to fix: require no parse error (exit 1) only.
haproxy_check=0
promtool check metrics <"$WORK/metrics-haproxy" >"$WORK/haproxy-lint" 2>&1 || haproxy_check=$?
[ "$haproxy_check" = 0 ] || { [ "$haproxy_check" = 3 ] && ! grep -qv '^haproxy_.*should have "_total" suffix$' "$WORK/haproxy-lint"; } ||
  fail "promtool rejects HAProxy's /metrics: $(cat "$WORK/haproxy-lint")"

# The exporters' output parses; its only lint findings are the suffixes of postgres_exporter's
# own names, which pgha-exporter keeps (the comparison with postgres_exporter is exporter_test).
for i in 0 1 2; do
  curl -s "http://127.0.0.1:$((EXPORTER + i))/metrics" >"$WORK/metrics-exporter-$i" || fail "GET exporter-$i /metrics"
  lint=0
  promtool check metrics <"$WORK/metrics-exporter-$i" >"$WORK/exporter-lint" 2>&1 || lint=$?
  [ "$lint" = 0 ] || { [ "$lint" = 3 ] && ! grep -qvE '^pg_[a-z_]+ (counter metrics should have "_total" suffix|non-histogram and non-summary metrics should not have "_count" suffix)$' "$WORK/exporter-lint"; } ||
    fail "promtool rejects exporter-$i's /metrics: $(cat "$WORK/exporter-lint")"
done

# Every metric the alert rules and the Grafana dashboard query is exposed by an agent, an
# exporter or HAProxy; pgha-router's own (pgha_router_*) are checked by router_test.sh against
# the router's /metrics, as this test runs HAProxy.
cat "$WORK"/metrics-* | $PY -c '
import json, re, sys
exposed = {line.split("{")[0].split(" ")[0] for line in sys.stdin if line[:1].isalpha()}
texts = [t["expr"] for p in json.load(open(sys.argv[1]))["panels"] for t in p["targets"]]
texts.append(open(sys.argv[2]).read())
wanted = {m for t in texts for m in re.findall(r"\b(?:patroni|pgha|haproxy|pg)_[a-z_]+\b", t)
          if not m.startswith("pgha_router_")}
missing = sorted(wanted - exposed)
sys.exit("not exposed: " + " ".join(missing) if missing else 0)' \
  "$REPO/deploy/grafana/pgha-cluster.json" "$REPO/deploy/prometheus/pgha-rules.yml" ||
  fail "the dashboard or the rules query metrics nobody exposes"

step "version"
out=$("${CTL[@]}" version pg-ha) || fail "pghactl version: $out"
[ "$(grep -c '^pg-[0-2]: Patroni 3.0.2 PostgreSQL 15\.' <<<"$out")" = 3 ] || fail "pghactl version: $out"

step "remove: wrong answers abort; the right ones delete every key of the cluster"
etcd_at=(env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$ETCD")
"${etcd_at[@]}" put /service/scratch/config '{"ttl": 30}' >/dev/null
"${etcd_at[@]}" put /service/scratch/initialize '123' >/dev/null
DCS=("$BIN/pghactl" --dcs-url "etcd3://127.0.0.1:$ETCD")
out=$(printf 'wrong\n' | "${DCS[@]}" remove scratch 2>&1) && fail "remove went ahead on a wrong name"
grep -q "Cluster names specified do not match" <<<"$out" || fail "remove: $out"
out=$(printf 'scratch\nyes\n' | "${DCS[@]}" remove scratch 2>&1) && fail "remove went ahead without the phrase"
grep -q 'You did not exactly type "Yes I am aware"' <<<"$out" || fail "remove: $out"
printf 'scratch\nYes I am aware\n' | "${DCS[@]}" remove scratch >/dev/null || fail "remove failed"
[ -z "$("${etcd_at[@]}" get --prefix /service/scratch/ --keys-only)" ] || fail "keys left after remove"
out=$(printf 'pg-ha\nYes I am aware\nnot-the-leader\n' | "${CTL[@]}" remove pg-ha 2>&1) &&
  fail "remove of a healthy cluster went ahead without the leader's name"
grep -q "You did not specify the current leader of the cluster" <<<"$out" || fail "remove: $out"
settled || fail "the cluster is not healthy at the end"
echo "PASS"
