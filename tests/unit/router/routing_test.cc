// router::DecideRoutes over cluster situations: where each port sends new connections.
#include "router/routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const MonoTime kNow = MonoTime{} + std::chrono::hours(1);
const WallTime kWallNow = WallTime{} + std::chrono::hours(24 * 365 * 56);

model::Member Member(const std::string& name, const std::string& role, uint64_t wal, int port,
                     const std::string& state = "running") {
  model::Member m;
  m.name = name;
  m.data = {{"role", role},
            {"state", state},
            {"xlog_location", wal},
            {"conn_url", "postgres://10.0.0.1:" + std::to_string(port) + "/postgres"},
            {"api_url", "http://10.0.0.1:" + std::to_string(port + 3576) + "/patroni"}};
  return m;
}

// pg-0 leads and runs as primary at WAL 1000; pg-1 and pg-2 replicate, caught up.
RoutingInput Healthy() {
  RoutingInput in;
  in.now = kNow;
  in.wall_now = kWallNow;
  in.dcs_reachable = true;
  model::ClusterSnapshot cluster;
  cluster.leader = model::Leader{"pg-0", 1, 1};
  cluster.members = {Member("pg-0", "master", 1000, 5432), Member("pg-1", "replica", 1000, 5433),
                     Member("pg-2", "replica", 1000, 5434)};
  in.cluster = cluster;
  return in;
}

std::vector<std::string> Names(const std::vector<Backend>& backends) {
  std::vector<std::string> out;
  for (const auto& b : backends) {
    out.push_back(b.member);
  }
  return out;
}

TEST(RoutingTest, WritesGoToTheLeaderReadsToTheReplicas) {
  auto routes = DecideRoutes(Healthy(), RouterSettings{});
  ASSERT_TRUE(routes.primary);
  EXPECT_EQ(routes.primary->member, "pg-0");
  EXPECT_EQ(routes.primary->host, "10.0.0.1");
  EXPECT_EQ(routes.primary->port, 5432);
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1", "pg-2"));
  EXPECT_FALSE(routes.reads_on_primary);
  EXPECT_EQ(routes.leader, "pg-0");
  EXPECT_TRUE(routes.from_dcs);
}

TEST(RoutingTest, PatroniFourRoleAndStateNamesAreUnderstood) {
  auto in = Healthy();
  in.cluster->members = {Member("pg-0", "primary", 1000, 5432),
                         Member("pg-1", "replica", 1000, 5433, "streaming")};
  auto routes = DecideRoutes(in, RouterSettings{});
  ASSERT_TRUE(routes.primary);
  EXPECT_EQ(routes.primary->member, "pg-0");
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1"));
}

TEST(RoutingTest, AMemberClaimingPrimaryWithoutTheLeaderKeyGetsNoWrites) {
  auto in = Healthy();
  in.cluster->members[1] = Member("pg-1", "master", 1200, 5433);  // a split-brained old primary
  auto routes = DecideRoutes(in, RouterSettings{});
  ASSERT_TRUE(routes.primary);
  EXPECT_EQ(routes.primary->member, "pg-0");
  // Nor reads: it is not a replica.
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-2"));
}

TEST(RoutingTest, NoLeaderKeyHoldsWrites) {
  auto in = Healthy();
  in.cluster->leader.reset();
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_THAT(routes.no_primary_reason, HasSubstr("no member holds the leader key"));
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1", "pg-2"));
}

TEST(RoutingTest, ALeaderNotYetRunningAsPrimaryHoldsWrites) {
  auto in = Healthy();
  in.cluster->leader = model::Leader{"pg-1", 2, 1};  // took the key, still promoting
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_THAT(routes.no_primary_reason, HasSubstr("pg-1 is not running as primary"));
  // pg-0 says master but lost the key: neither writes nor reads.
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-2"));
}

TEST(RoutingTest, AStoppedLeaderHoldsWrites) {
  auto in = Healthy();
  in.cluster->members[0] = Member("pg-0", "master", 1000, 5432, "stopped");
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_THAT(routes.no_primary_reason, HasSubstr("state stopped"));
}

TEST(RoutingTest, ALeaderWithoutMemberKeyOrAddressHoldsWrites) {
  auto in = Healthy();
  in.cluster->members.erase(in.cluster->members.begin());
  EXPECT_THAT(DecideRoutes(in, RouterSettings{}).no_primary_reason, HasSubstr("no member key"));
  in = Healthy();
  in.cluster->members[0].data.erase("conn_url");
  EXPECT_THAT(DecideRoutes(in, RouterSettings{}).no_primary_reason, HasSubstr("no conn_url"));
}

TEST(RoutingTest, LaggingAndNoloadbalanceReplicasTakeNoReads) {
  auto in = Healthy();
  in.cluster->members[0].data["xlog_location"] = 10 * 1024 * 1024;
  in.cluster->members[1].data["xlog_location"] = 10 * 1024 * 1024 - 100;  // 100 bytes behind
  in.cluster->members[2].data["xlog_location"] = 1000;                    // ~10 MB behind
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1"));

  in.cluster->members[1].data["tags"] = {{"noloadbalance", true}};
  routes = DecideRoutes(in, RouterSettings{});
  EXPECT_THAT(routes.replicas, IsEmpty());
  // read_fallback: primary (the default) sends reads to the primary then.
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-0"));
  EXPECT_TRUE(routes.reads_on_primary);

  RouterSettings generous;
  generous.max_replica_lag_bytes = 100 * 1024 * 1024;
  EXPECT_THAT(Names(DecideRoutes(in, generous).readers), ElementsAre("pg-2"));
}

TEST(RoutingTest, LagIsMeasuredFromTheClusterOptimeWhenItIsAhead) {
  auto in = Healthy();
  in.cluster->status.optime = 5 * 1024 * 1024;
  EXPECT_THAT(DecideRoutes(in, RouterSettings{}).replicas, IsEmpty());
}

TEST(RoutingTest, ReadFallbackRejectLeavesNoReaders) {
  auto in = Healthy();
  in.cluster->members.resize(1);
  RouterSettings reject;
  reject.read_fallback = ReadFallback::kReject;
  auto routes = DecideRoutes(in, reject);
  EXPECT_THAT(routes.readers, IsEmpty());
  EXPECT_FALSE(routes.reads_on_primary);
}

TEST(RoutingTest, AReplicaWhoseRestApiSaysNoLeavesTheReadPort) {
  auto in = Healthy();
  in.probes["pg-1"] = ProbeAnswer{false, false};
  in.probes["pg-2"] = ProbeAnswer{false, true};
  EXPECT_THAT(Names(DecideRoutes(in, RouterSettings{}).readers), ElementsAre("pg-2"));
}

TEST(RoutingTest, ReplicasNotRunningTakeNoReads) {
  auto in = Healthy();
  in.cluster->members[1] = Member("pg-1", "replica", 1000, 5433, "starting");
  in.cluster->members[2] = Member("pg-2", "uninitialized", 0, 5434, "creating replica");
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_THAT(routes.replicas, IsEmpty());
  EXPECT_TRUE(routes.reads_on_primary);
}

TEST(RoutingTest, AnAnnouncedSwitchoverHoldsWritesForABoundedTime) {
  auto in = Healthy();
  model::Failover failover;
  failover.leader = "pg-0";
  failover.candidate = "pg-1";
  in.cluster->failover = failover;
  in.failover_seen_at = kNow - seconds(1);
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_EQ(routes.no_primary_reason, "switchover in progress");
  EXPECT_EQ(routes.leader, "pg-0");

  in.failover_seen_at = kNow - seconds(11);  // past switchover_hold (10 s)
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);
}

TEST(RoutingTest, TheLeadersHandoverNoticeHoldsWritesForABoundedTime) {
  auto in = Healthy();
  model::HandoverNotice notice;
  notice.leader = "pg-0";
  notice.reason = model::HandoverReason::kShutdown;
  notice.mod_revision = 42;
  in.cluster->handover = notice;
  in.handover_seen_at = kNow - seconds(1);
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_EQ(routes.no_primary_reason, "leader pg-0 announced a shutdown");
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1", "pg-2")) << "reads go on";

  in.handover_seen_at = kNow - seconds(11);  // past switchover_hold (10 s)
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);
}

TEST(RoutingTest, AHandoverNoticeOfAMemberThatNoLongerLeadsHoldsNothing) {
  auto in = Healthy();
  model::HandoverNotice notice;
  notice.leader = "pg-1";  // it handed over to pg-0 and has not withdrawn its notice yet
  notice.mod_revision = 42;
  in.cluster->handover = notice;
  in.handover_seen_at = kNow;
  auto routes = DecideRoutes(in, RouterSettings{});
  ASSERT_TRUE(routes.primary);
  EXPECT_EQ(routes.primary->member, "pg-0");
}

TEST(RoutingTest, AScheduledSwitchoverHoldsWritesFromWhenItFallsDue) {
  auto in = Healthy();
  in.failover_seen_at = kNow - seconds(3600);  // written an hour ago
  model::Failover scheduled;
  scheduled.leader = "pg-0";
  scheduled.scheduled_at = kWallNow - seconds(1);  // due a second ago
  in.cluster->failover = scheduled;
  EXPECT_FALSE(DecideRoutes(in, RouterSettings{}).primary);
  in.wall_now = kWallNow + seconds(10);  // due 11 s ago and still not carried out
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);
}

TEST(RoutingTest, ASwitchoverScheduledLaterOrForOthersHoldsNothing) {
  auto in = Healthy();
  in.failover_seen_at = kNow;
  model::Failover later;
  later.leader = "pg-0";
  later.scheduled_at = kWallNow + seconds(60);
  in.cluster->failover = later;
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);

  model::Failover stale;
  stale.leader = "pg-2";  // not the leader: the agents ignore it
  in.cluster->failover = stale;
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);

  model::Failover to_self;
  to_self.candidate = "pg-0";
  in.cluster->failover = to_self;
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);

  in.cluster->failover = model::Failover{};  // emptied ("{}") once done
  EXPECT_TRUE(DecideRoutes(in, RouterSettings{}).primary);
}

TEST(RoutingTest, EtcdAwayKeepsTheLastLeaderOnlyWhileItsRestApiSaysPrimary) {
  auto in = Healthy();
  in.dcs_reachable = false;
  auto routes = DecideRoutes(in, RouterSettings{});  // nothing checked yet: nothing vouched
  EXPECT_FALSE(routes.primary);
  EXPECT_FALSE(routes.from_dcs);
  EXPECT_THAT(routes.no_primary_reason, HasSubstr("etcd is unreachable"));

  in.probes["pg-0"] = ProbeAnswer{true, false};
  in.probes["pg-1"] = ProbeAnswer{false, true};
  in.probes["pg-2"] = ProbeAnswer{false, false};
  routes = DecideRoutes(in, RouterSettings{});
  ASSERT_TRUE(routes.primary);
  EXPECT_EQ(routes.primary->member, "pg-0");
  EXPECT_THAT(Names(routes.readers), ElementsAre("pg-1"));

  in.probes["pg-0"] = ProbeAnswer{false, false};  // demoted itself (no failsafe)
  EXPECT_FALSE(DecideRoutes(in, RouterSettings{}).primary);
}

TEST(RoutingTest, EtcdAwayNeverPromotesAMemberThatClaimsPrimary) {
  auto in = Healthy();
  in.dcs_reachable = false;
  in.probes["pg-0"] = ProbeAnswer{false, false};
  in.probes["pg-1"] = ProbeAnswer{true, false};  // not the last leader: not trusted
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_THAT(routes.readers, IsEmpty());
}

TEST(RoutingTest, NothingReadYetHoldsEverything) {
  RoutingInput in;
  in.dcs_reachable = true;
  auto routes = DecideRoutes(in, RouterSettings{});
  EXPECT_FALSE(routes.primary);
  EXPECT_THAT(routes.readers, IsEmpty());
  EXPECT_THAT(routes.no_primary_reason, HasSubstr("not been read from etcd"));
}

}  // namespace
}  // namespace pgha::router
