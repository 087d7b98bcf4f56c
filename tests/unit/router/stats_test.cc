// The router's /metrics and status page, rendered from fixed figures.
#include "router/stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

RouterView View() {
  RouterView v;
  v.started = MonoTime{} + std::chrono::seconds(100);
  v.now = v.started + std::chrono::seconds(42);
  v.proxy.write.active = 3;
  v.proxy.write.total = 10;
  v.proxy.write.held_total = 2;
  v.proxy.write.hold_seconds_sum = 1.5;
  v.proxy.read.refused_maxconn = 4;
  v.proxy.write.retried = 5;
  v.proxy.members["write"]["pg-0"] = MemberStats{3, 10};
  v.topology.routes.primary = Backend{"pg-0", "10.0.0.1", 5432, ""};
  v.topology.routes.readers = {Backend{"pg-1", "10.0.0.2", 5432, ""}};
  v.topology.routes.leader = "pg-0";
  v.topology.dcs_reachable = true;
  v.topology.primary_changes = 1;
  v.topology.apply_delay_sum_seconds = 0.004;
  v.topology.apply_delay_count = 2;
  v.topology.cluster_loaded = v.now - std::chrono::milliseconds(250);
  return v;
}

TEST(RouterStatsTest, MetricsCarryTheFigures) {
  std::string text = RenderMetrics(View());
  for (const char* line : {
           "pgha_router_connections_active{listener=\"write\"} 3\n",
           "pgha_router_connections_total{listener=\"write\"} 10\n",
           "pgha_router_connections_refused_maxconn_total{listener=\"read\"} 4\n",
           "pgha_router_connections_held_total{listener=\"write\"} 2\n",
           "pgha_router_hold_seconds_total{listener=\"write\"} 1.5\n",
           "pgha_router_logins_retried_total{listener=\"write\"} 5\n",
           "pgha_router_backend_connections_active{listener=\"write\",member=\"pg-0\"} 3\n",
           "pgha_router_primary{member=\"pg-0\"} 1\n",
           "pgha_router_replica{member=\"pg-1\"} 1\n",
           "pgha_router_writes_held 0\n",
           "pgha_router_etcd_reachable 1\n",
           "pgha_router_retargets_total 1\n",
           "pgha_router_apply_delay_seconds_count 2\n",
           "pgha_router_topology_age_seconds 0.25\n",
           "pgha_router_uptime_seconds 42\n",
           "# TYPE pgha_router_connections_total counter\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
}

TEST(RouterStatsTest, HeldWritesShowOnThePageAndInMetrics) {
  auto v = View();
  v.topology.routes.primary.reset();
  v.topology.routes.no_primary_reason = "switchover <in> progress";
  EXPECT_THAT(RenderMetrics(v), HasSubstr("pgha_router_writes_held 1\n"));
  EXPECT_THAT(RenderMetrics(v), Not(HasSubstr("pgha_router_primary{")));
  std::string page = RenderStatusPage(v);
  EXPECT_THAT(page, HasSubstr("switchover &lt;in&gt; progress"));
  EXPECT_THAT(page, HasSubstr("pg-1 10.0.0.2:5432"));
}

}  // namespace
}  // namespace pgha::router
