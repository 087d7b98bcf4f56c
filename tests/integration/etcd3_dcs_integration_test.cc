// Etcd3Dcs, Patroni's key layout, against a real etcd: the watch-fed cache, wake-ups on leader
// changes, and a value written as Patroni writes it read back as a cluster.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "dcs/etcd3/etcd3_dcs.h"
#include "model/codec.h"
#include "support/etcd_cluster.h"

namespace pgha::dcs::etcd3 {
namespace {

using pgha::testing::EtcdCluster;
using pgha::testing::EtcdClusterOptions;
using std::chrono::milliseconds;

std::shared_ptr<Etcd3Client> Client(const EtcdCluster& cluster) {
  ClientOptions options;
  options.hosts = cluster.Hosts();
  options.request_timeout = milliseconds(5000);
  return std::make_shared<Etcd3Client>(options, MakeHttplibTransport({}));
}

bool Eventually(const std::function<bool()>& predicate) {
  return pgha::testing::WaitUntil(predicate, milliseconds(10000));
}

// A partition cuts the watch silently: the stream goes quiet and nothing fails. Once one of the
// node's own requests times out, the cache must stop answering for etcd until the watch is back.
TEST(Etcd3DcsIntegrationTest, CacheStopsAnsweringWhenEtcdGoesSilent) {
  EtcdCluster cluster(EtcdClusterOptions{1, false, false});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  ClientOptions options;
  options.hosts = cluster.Hosts();
  options.request_timeout = milliseconds(1000);
  Etcd3Dcs node({"/service/pg-ha/", "pg-0", true},
                std::make_shared<Etcd3Client>(options, MakeHttplibTransport({})));
  node.SetTimings(10, 1, 3);
  ASSERT_TRUE(*node.AttemptToAcquireLeader());
  // The watch-fed cache itself must hold the leader before etcd goes silent: a LoadCluster that
  // succeeds may have read etcd directly while the watch was still coming up (a loaded CI run
  // saw the cache not yet built at the SIGSTOP).
  ASSERT_TRUE(Eventually([&] {
    auto c = node.CachedCluster();
    return c.ok() && c->leader && c->leader->name == "pg-0";
  }));

  cluster.SignalMember(0, SIGSTOP);
  auto cached = node.LoadCluster();
  ASSERT_TRUE(cached.ok());  // nothing has failed yet: the cache still answers
  EXPECT_FALSE(node.UpdateLeader(*cached).ok());
  auto after = node.LoadCluster();
  EXPECT_FALSE(after.ok()) << "answered from a cache that etcd's silence made stale";

  cluster.SignalMember(0, SIGCONT);
  EXPECT_TRUE(Eventually([&] {
    auto c = node.LoadCluster();
    return c.ok() && c->leader && c->leader->name == "pg-0";
  }));
}

TEST(Etcd3DcsIntegrationTest, CacheFollowsTheClusterAndWakesOnLeaderChange) {
  EtcdCluster cluster(EtcdClusterOptions{3, false, false});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  const std::string prefix = "/service/pg-ha/";
  Etcd3Dcs node({prefix, "pg-0", true}, Client(cluster));
  Etcd3Dcs other({prefix, "pg-1", false}, Client(cluster));
  node.SetTimings(10, 1, 3);
  other.SetTimings(10, 1, 3);

  model::MemberData data;
  data.conn_url = "postgres://127.0.0.1:5432/postgres";
  data.api_url = "http://127.0.0.1:8008/patroni";
  data.state = "running";
  data.role = "master";
  data.version = "3.0.2";
  data.xlog_location = 67288520;
  data.timeline = 1;
  ASSERT_TRUE(node.TouchMember(model::EncodeMember(data)).ok());
  ASSERT_TRUE(*node.Initialize(true, "7712196491986988846"));
  ASSERT_TRUE(*node.SetConfigValue(R"({"ttl":30,"loop_wait":10})", std::nullopt));

  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = node.WaitForChange(milliseconds(10000)); });
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_TRUE(*other.AttemptToAcquireLeader());
  waiter.join();
  EXPECT_TRUE(woke);

  ASSERT_TRUE(Eventually([&] {
    auto c = node.LoadCluster();
    return c.ok() && c->leader && c->leader->name == "pg-1";
  }));
  auto snapshot = node.LoadCluster();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->initialize, "7712196491986988846");
  ASSERT_EQ(snapshot->members.size(), 1u);
  EXPECT_EQ(snapshot->members[0].xlog_location(), 67288520u);
  EXPECT_EQ(snapshot->config->data.ttl(), 30);
  EXPECT_EQ(snapshot->leader->lease, other.lease_id());

  // CAS on config: a stale revision loses, the current one wins.
  int64_t rev = snapshot->config->mod_revision;
  ASSERT_TRUE(*node.SetConfigValue(R"({"ttl":20})", rev));
  EXPECT_FALSE(*node.SetConfigValue(R"({"ttl":40})", rev));

  // Releasing the lease removes the leader key and the member key at once.
  ASSERT_TRUE(other.ReleaseLease().ok());
  ASSERT_TRUE(Eventually([&] {
    auto c = node.LoadCluster();
    return c.ok() && !c->leader;
  }));
  ASSERT_TRUE(node.DeleteCluster().ok());
  ASSERT_TRUE(Eventually([&] {
    auto c = node.LoadCluster();
    return c.ok() && c->members.empty() && !c->initialize;
  }));
}

}  // namespace
}  // namespace pgha::dcs::etcd3
