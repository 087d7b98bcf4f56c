// The etcd3 client against a real 3-member etcd cluster on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "dcs/etcd3/client.h"
#include "dcs/etcd3/etcd3_dcs.h"
#include "support/etcd_cluster.h"

namespace pgha::dcs::etcd3 {
namespace {

using pgha::testing::EtcdCluster;
using pgha::testing::EtcdClusterOptions;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::shared_ptr<Etcd3Client> MakeClient(const EtcdCluster& cluster,
                                        std::vector<std::string> hosts = {}, TlsOptions tls = {},
                                        std::string user = "", std::string password = "") {
  ClientOptions options;
  options.hosts = hosts.empty() ? cluster.Hosts() : hosts;
  options.protocol = cluster.Protocol();
  options.username = std::move(user);
  options.password = std::move(password);
  options.request_timeout = milliseconds(5000);
  return std::make_shared<Etcd3Client>(options, MakeHttplibTransport(std::move(tls)));
}

class Etcd3ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<EtcdCluster>();
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
  }
  std::unique_ptr<EtcdCluster> cluster_;
};

TEST_F(Etcd3ClusterTest, DiscoversAllMembers) {
  auto client = MakeClient(*cluster_, {cluster_->Host(1)});
  ASSERT_TRUE(client->Connect().ok());
  EXPECT_EQ(client->ApiPrefix(), "/v3");
  EXPECT_EQ(client->KnownEndpoints().size(), 3u);
}

TEST_F(Etcd3ClusterTest, PutRangeDeleteRoundTrip) {
  auto client = MakeClient(*cluster_);
  ASSERT_TRUE(client->Put("/t/a", "1").ok());
  ASSERT_TRUE(client->Put("/t/b", std::string("\0\xff", 2)).ok());
  ASSERT_TRUE(client->Put("/u/c", "3").ok());
  auto range = client->RangePrefix("/t/");
  ASSERT_TRUE(range.ok()) << range.error().message();
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[1].value, std::string("\0\xff", 2));
  auto serial = client->RangePrefix("/t/", true);
  ASSERT_TRUE(serial.ok());
  auto deleted = client->DeletePrefix("/t/");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  EXPECT_TRUE(client->RangePrefix("/t/")->kvs.empty());
}

TEST_F(Etcd3ClusterTest, TwoNodesRaceForTheLeaderKeyAndExactlyOneWins) {
  for (int round = 0; round < 5; ++round) {
    std::string prefix = "/service/race" + std::to_string(round) + "/";
    Etcd3Dcs a({prefix, "pg-a", false}, MakeClient(*cluster_));
    Etcd3Dcs b({prefix, "pg-b", false}, MakeClient(*cluster_, {cluster_->Host(2)}));
    a.SetTimings(10, 1, 3);
    b.SetTimings(10, 1, 3);
    std::atomic<int> go{0};
    Result<bool> won_a = false;
    Result<bool> won_b = false;
    std::thread ta([&] {
      while (go.load() == 0) {
      }
      won_a = a.AttemptToAcquireLeader();
    });
    std::thread tb([&] {
      while (go.load() == 0) {
      }
      won_b = b.AttemptToAcquireLeader();
    });
    go = 1;
    ta.join();
    tb.join();
    ASSERT_TRUE(won_a.ok() && won_b.ok());
    EXPECT_NE(*won_a, *won_b) << "round " << round;
    auto leader = MakeClient(*cluster_)->Range(prefix + "leader");
    ASSERT_TRUE(leader.ok());
    ASSERT_EQ(leader->kvs.size(), 1u);
    EXPECT_EQ(leader->kvs[0].value, *won_a ? "pg-a" : "pg-b");
    EXPECT_EQ(leader->kvs[0].lease, *won_a ? a.lease_id() : b.lease_id());
  }
}

TEST_F(Etcd3ClusterTest, KeyUnderAnExpiredLeaseDisappears) {
  auto client = MakeClient(*cluster_);
  auto lease = client->LeaseGrant(2);
  ASSERT_TRUE(lease.ok()) << lease.error().message();
  ASSERT_TRUE(client->Put("/lease/k", "v", *lease).ok());
  ASSERT_EQ(client->Range("/lease/k")->kvs.size(), 1u);
  EXPECT_GT(*client->LeaseKeepAlive(*lease), 0);
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  bool gone = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (client->Range("/lease/k")->kvs.empty()) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(*client->LeaseKeepAlive(*lease), 0);  // the lease itself is gone too
}

TEST_F(Etcd3ClusterTest, RevokedLeaseTakesItsKeysAtOnce) {
  auto client = MakeClient(*cluster_);
  auto lease = client->LeaseGrant(30);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client->Put("/revoke/k", "v", *lease).ok());
  ASSERT_TRUE(client->LeaseRevoke(*lease).ok());
  EXPECT_TRUE(client->Range("/revoke/k")->kvs.empty());
}

TEST_F(Etcd3ClusterTest, WatchSeesEveryChangeInOrderAndResumesAfterItsMemberIsKilled) {
  auto watcher = MakeClient(*cluster_, {cluster_->Host(0)});
  ASSERT_TRUE(watcher->Connect().ok());
  auto writer = MakeClient(*cluster_, {cluster_->Host(1), cluster_->Host(2)});
  auto start = writer->Put("/w/start", "x");
  ASSERT_TRUE(start.ok());

  std::mutex mutex;
  std::vector<std::string> seen;
  StreamCanceller canceller;
  WatchOptions options;
  options.key = "/w/";
  options.range_end = "/w0";
  options.start_revision = *start + 1;
  options.idle_timeout = seconds(5);
  std::thread watch_thread([&] {
    (void)watcher->Watch(
        options,
        [&](const WatchBatch& batch) {
          std::lock_guard lock(mutex);
          for (const auto& e : batch.events) {
            seen.push_back((e.type == WatchEvent::Type::kDelete ? "-" : "+") + e.kv.key + "=" +
                           e.kv.value);
          }
          return true;
        },
        &canceller);
  });

  std::vector<std::string> expected;
  std::set<std::string> existing;
  auto write = [&](int i) {
    std::string key = "/w/k" + std::to_string(i % 4);
    if (i % 3 == 2) {
      ASSERT_TRUE(writer->DeleteRange(key).ok());
      if (existing.erase(key) > 0) {  // deleting a missing key is no event
        expected.push_back("-" + key + "=");
      }
    } else {
      existing.insert(key);
      ASSERT_TRUE(writer->Put(key, std::to_string(i)).ok());
      expected.push_back("+" + key + "=" + std::to_string(i));
    }
  };
  for (int i = 0; i < 20; ++i) {
    write(i);
  }
  // Wait until the watcher is demonstrably connected and caught up, then kill its member.
  auto caught_up = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex);
        if (seen.size() >= n) {
          return true;
        }
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  };
  if (!caught_up(expected.size())) {
    canceller.Cancel();
    watch_thread.join();
    FAIL() << "the watch did not deliver the first changes";
  }
  std::string used = watcher->CurrentEndpoint();
  EXPECT_EQ(used, "http://" + cluster_->Host(0));
  cluster_->KillMember(0);
  for (int i = 20; i < 40; ++i) {
    write(i);
  }
  bool resumed = caught_up(expected.size());
  canceller.Cancel();
  watch_thread.join();
  EXPECT_TRUE(resumed) << "the watch did not resume after its member died";
  std::lock_guard lock(mutex);
  EXPECT_EQ(seen, expected);  // in order, nothing lost, nothing repeated
  EXPECT_NE(watcher->CurrentEndpoint(), used);
}

TEST_F(Etcd3ClusterTest, RequestsSucceedWhileOneOfThreeMembersIsDown) {
  auto client = MakeClient(*cluster_);
  ASSERT_TRUE(client->Connect().ok());
  cluster_->KillMember(0);
  auto put = client->Put("/down/k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  auto txn = client->Txn({Compare::CreateRevision("/down/new", 0)}, {Op::Put("/down/new", "x")});
  ASSERT_TRUE(txn.ok());
  EXPECT_TRUE(txn->succeeded);
  auto lease = client->LeaseGrant(10);
  ASSERT_TRUE(lease.ok());
  EXPECT_GT(*client->LeaseKeepAlive(*lease), 0);
  // A fresh client that knows only the dead member's neighbours still works, and so does one
  // configured with the dead member first.
  auto dead_first = MakeClient(*cluster_, {cluster_->Host(0), cluster_->Host(1)});
  EXPECT_TRUE(dead_first->Range("/down/k").ok());
  // The member comes back and catches up.
  ASSERT_TRUE(cluster_->StartMember(0));
  ASSERT_TRUE(cluster_->WaitHealthy(0));
  auto only_zero = MakeClient(*cluster_, {cluster_->Host(0)});
  auto range = only_zero->Range("/down/k");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->kvs.size(), 1u);
}

TEST(Etcd3FormingClusterTest, AClientWorksWhileTheLastMemberHasNotJoinedYet) {
  // Two of three members of a new cluster: etcd reports cluster version 3.0.0 until every
  // member has been reachable, and its /v3alpha path is gone. The containers of a compose file
  // start in any order, so an agent meets this state.
  EtcdCluster cluster(EtcdClusterOptions{.members = 3, .started_members = 2});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto transport = MakeHttplibTransport({});
  auto version = transport->Get("http://" + cluster.Host(0), "/version", {}, milliseconds(2000));
  ASSERT_TRUE(version.ok());
  EXPECT_THAT(version->body, ::testing::HasSubstr(R"("etcdcluster":"3.0.0")"));
  auto client = MakeClient(cluster);
  ASSERT_TRUE(client->Connect().ok());
  EXPECT_EQ(client->ApiPrefix(), "/v3");
  auto put = client->Put("/forming/k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  ASSERT_TRUE(cluster.StartMember(2));
  ASSERT_TRUE(cluster.WaitHealthy(2));
  auto range = MakeClient(cluster, {cluster.Host(2)})->Range("/forming/k");
  ASSERT_TRUE(range.ok()) << range.error().message();
  EXPECT_EQ(range->kvs.size(), 1u);
}

TEST_F(Etcd3ClusterTest, QuorumLossIsUnavailableWithinTheDeadline) {
  ClientOptions options;
  options.hosts = cluster_->Hosts();
  options.request_timeout = milliseconds(2000);
  Etcd3Client client(options, MakeHttplibTransport({}));
  ASSERT_TRUE(client.Connect().ok());
  cluster_->KillMember(1);
  cluster_->KillMember(2);
  auto start = std::chrono::steady_clock::now();
  auto put = client.Put("/quorum/k", "v");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(put.error().IsUnavailable() || put.error().IsTimeout()) << put.error().ToString();
  EXPECT_LT(took, seconds(6));
}

TEST(Etcd3AuthTest, UsernameAndPassword) {
  EtcdCluster cluster(EtcdClusterOptions{1, false, true});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  auto good = MakeClient(cluster, {}, {}, "root", EtcdCluster::kRootPassword);
  auto put = good->Put("/auth/k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  EXPECT_EQ(good->Range("/auth/k")->kvs.size(), 1u);

  auto wrong = MakeClient(cluster, {}, {}, "root", "wrong");
  auto denied = wrong->Put("/auth/k", "v");
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(denied.error().IsPermissionDenied()) << denied.error().ToString();

  auto anonymous = MakeClient(cluster);
  auto refused = anonymous->Put("/auth/k", "v");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().IsPermissionDenied()) << refused.error().ToString();
}

TEST(Etcd3TlsTest, CaAndClientCertificate) {
  EtcdCluster cluster(EtcdClusterOptions{1, true, false});
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  TlsOptions tls{cluster.ca_file(), cluster.client_cert(), cluster.client_key(), true};
  auto client = MakeClient(cluster, {}, tls);
  auto put = client->Put("/tls/k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  EXPECT_EQ(client->Range("/tls/k")->kvs[0].value, "v");

  // A watch over TLS too.
  StreamCanceller canceller;
  std::atomic<bool> got{false};
  std::thread t([&] {
    (void)client->Watch(
        WatchOptions{"/tls/", "/tls0", *put + 1, seconds(5)},
        [&](const WatchBatch&) {
          got = true;
          return false;
        },
        &canceller);
  });
  ASSERT_TRUE(client->Put("/tls/k2", "v").ok());
  t.join();
  EXPECT_TRUE(got);

  // Without a client certificate the server refuses the handshake.
  auto no_cert = MakeClient(cluster, {}, TlsOptions{cluster.ca_file(), "", "", true});
  EXPECT_FALSE(no_cert->Put("/tls/k", "v").ok());
  // Without the CA the server's certificate is not trusted.
  auto no_ca =
      MakeClient(cluster, {}, TlsOptions{"", cluster.client_cert(), cluster.client_key(), true});
  EXPECT_FALSE(no_ca->Put("/tls/k", "v").ok());
}

}  // namespace
}  // namespace pgha::dcs::etcd3
