// GET /metrics: Patroni's names with {scope, name}, values from the node's status, and pgha's own
// series; the text must parse as Prometheus exposition format (checked by promtool in the
// operations test).
#include "api/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/rest_api.h"

namespace pgha::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

model::NodeStatus Replica() {
  model::NodeStatus s;
  s.scope = "pg-ha";
  s.name = "pg-1";
  s.version = "3.0.2";
  s.postgres_running = true;
  s.in_recovery = true;
  s.postmaster_start_time = "2026-11-25 19:41:17.915483+00:00";
  s.server_version = 150020;
  s.received_location = 67288520;
  s.replayed_location = 67288000;
  s.replication_state = "streaming";
  s.timeline = 3;
  s.dcs_last_seen = 1795635713;
  s.failover_priority = 2;
  return s;
}

TEST(MetricsTest, PatronisGaugesForAReplica) {
  std::string text = RenderMetrics(Replica());
  const std::string l = "{scope=\"pg-ha\",name=\"pg-1\"}";
  for (const std::string& line : {
           "patroni_version" + l + " 30002",
           "patroni_postgres_running" + l + " 1",
           "patroni_postmaster_start_time" + l + " 1795635677.915483",
           "patroni_primary" + l + " 0",
           "patroni_replica" + l + " 1",
           "patroni_xlog_location" + l + " 0",
           "patroni_xlog_received_location" + l + " 67288520",
           "patroni_xlog_replayed_location" + l + " 67288000",
           "patroni_postgres_streaming" + l + " 1",
           "patroni_postgres_in_archive_recovery" + l + " 0",
           "patroni_postgres_server_version" + l + " 150020",
           "patroni_postgres_timeline" + l + " 3",
           "patroni_dcs_last_seen" + l + " 1795635713",
           "patroni_pending_restart" + l + " 0",
           "patroni_is_paused" + l + " 0",
           "patroni_failover_priority" + l + " 2",
       }) {
    EXPECT_THAT(text, HasSubstr(line + "\n")) << line;
  }
  EXPECT_THAT(text, HasSubstr("# TYPE patroni_xlog_location gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("pgha_lease_margin_seconds")));  // only on the leader
}

TEST(MetricsTest, LeaderAndPghaSeries) {
  auto s = Replica();
  s.in_recovery = false;
  s.has_lock = true;
  s.wal_position = 99;
  s.pending_restart_reason = {{"max_connections", {{"old_value", "100"}}}};
  s.metrics.failovers = 2;
  s.metrics.last_promotion_seconds = 1.25;
  s.metrics.lease_margin_seconds = 4.5;
  s.metrics.dcs_load.Observe(0.003);
  s.metrics.dcs_load.Observe(0.2);
  std::string text = RenderMetrics(s);
  const std::string l = "scope=\"pg-ha\",name=\"pg-1\"";
  EXPECT_THAT(text, HasSubstr("patroni_primary{" + l + "} 1\n"));
  EXPECT_THAT(text, HasSubstr("patroni_xlog_location{" + l + "} 99\n"));
  EXPECT_THAT(text, HasSubstr("patroni_pending_restart{" + l + "} 1\n"));
  EXPECT_THAT(text, HasSubstr("pgha_promotions_total{" + l + ",kind=\"failover\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgha_promotions_total{" + l + ",kind=\"switchover\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("pgha_last_promotion_duration_seconds{" + l + "} 1.25\n"));
  EXPECT_THAT(text, HasSubstr("pgha_lease_margin_seconds{" + l + "} 4.5\n"));
  // Cumulative buckets: 0.003 falls in le=0.005 and above, 0.2 in le=0.25 and above.
  const std::string load =
      "pgha_dcs_request_duration_seconds_bucket{" + l + ",operation=\"load_cluster\",le=";
  EXPECT_THAT(text, HasSubstr(load + "\"0.0025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr(load + "\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(load + "\"0.25\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(load + "\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pgha_dcs_request_duration_seconds_count{" + l +
                              ",operation=\"load_cluster\"} 2\n"));
}

TEST(MetricsTest, LabelValuesAreEscapedAndServedByTheApi) {
  auto s = Replica();
  s.scope = "a\"b\\c";
  EXPECT_THAT(RenderMetrics(s), HasSubstr("{scope=\"a\\\"b\\\\c\",name=\"pg-1\"}"));
  Request get;
  get.method = "GET";
  get.path = "/metrics";
  Reply reply = HandleRequest(get, ApiState{Replica(), nullptr}, AccessPolicy{});
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(reply.body, HasSubstr("# HELP patroni_version "));
}

}  // namespace
}  // namespace pgha::api
