// Three pgha nodes with real PostgreSQL 15 and a real 3-member etcd on loopback: the cluster
// forms, replicates, survives the loss of any one node, and rejoins the old primary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <optional>
#include <thread>

#include "support/pgha_cluster.h"

namespace pgha::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

class HaClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<PghaCluster>(PghaBinary());
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(cluster_->StartNode(i));
    }
    primary_ = cluster_->WaitForWritablePrimary(seconds(60));
    ASSERT_GE(primary_, 0) << "no primary; log of pg-0:\n" << cluster_->Log(0);
    for (int i = 0; i < 3; ++i) {
      if (i != primary_) {
        ASSERT_TRUE(cluster_->WaitForStreamingReplica(i, seconds(60)))
            << cluster_->Name(i) << " does not stream; log:\n"
            << cluster_->Log(i);
      }
    }
    ASSERT_TRUE(cluster_->Sql(primary_, "CREATE TABLE rows(id int primary key)").has_value());
  }

  void TearDown() override {
    if (HasFailure() && cluster_) {
      for (int i = 0; i < 3; ++i) {
        std::cerr << "----- log of " << cluster_->Name(i) << "\n" << cluster_->Log(i);
        std::cerr << "----- PostgreSQL log of " << cluster_->Name(i) << "\n"
                  << cluster_->PostgresLog(i);
      }
    }
  }

  bool Insert(int node, int id) {
    return cluster_->Sql(node, "INSERT INTO rows VALUES (" + std::to_string(id) + ")").has_value();
  }

  std::string Rows(int node) {
    return cluster_->Sql(node, "SELECT id FROM rows ORDER BY id").value_or("<unreachable>");
  }

  bool WaitForRows(int node, const std::string& expected, seconds timeout = seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Rows(node) == expected) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    return false;
  }

  std::unique_ptr<PghaCluster> cluster_;
  int primary_ = -1;
};

TEST_F(HaClusterTest, FormsWithOnePrimaryAndTwoStreamingReplicas) {
  ASSERT_TRUE(Insert(primary_, 1));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitForRows(i, "1")) << cluster_->Name(i);
    bool is_primary = i == primary_;
    EXPECT_EQ(cluster_->HttpStatus(i, "/primary"), is_primary ? 200 : 503);
    EXPECT_EQ(cluster_->HttpStatus(i, "/primary", "OPTIONS"), is_primary ? 200 : 503);
    EXPECT_EQ(cluster_->HttpStatus(i, "/replica", "OPTIONS"), is_primary ? 503 : 200);
    EXPECT_EQ(cluster_->HttpStatus(i, "/health"), 200);
    EXPECT_EQ(cluster_->HttpStatus(i, "/patroni"), 200);
    // /patroni reports the agent's last cycle: a replica whose row is already visible may still
    // show its state from before streaming began for up to a loop_wait.
    std::string expected =
        is_primary ? "\"role\": \"master\"" : "\"replication_state\": \"streaming\"";
    WaitUntil([&] { return cluster_->HttpBody(i, "/patroni").find(expected) != std::string::npos; },
              std::chrono::seconds(5));
    EXPECT_THAT(cluster_->HttpBody(i, "/patroni"), HasSubstr(expected));
  }
  // Writes on a replica are refused.
  int replica = (primary_ + 1) % 3;
  EXPECT_FALSE(Insert(replica, 2));
  // One physical slot per replica on the primary.
  EXPECT_EQ(cluster_->Sql(primary_, "SELECT count(*) FROM pg_replication_slots WHERE active"), "2");
}

TEST_F(HaClusterTest, NodeCrashFailsOverAndTheOldPrimaryRejoinsWithRewind) {
  ASSERT_TRUE(Insert(primary_, 1));
  int old = primary_;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitForRows(i, "1"));
  }
  cluster_->KillNode(old);
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), old);
  ASSERT_GE(fresh, 0) << "no new primary after the crash";
  ASSERT_NE(fresh, old);
  ASSERT_TRUE(Insert(fresh, 2));
  // The old primary comes back, is rewound, and follows the new one.
  ASSERT_TRUE(cluster_->StartNode(old));
  ASSERT_TRUE(cluster_->WaitForStreamingReplica(old, seconds(90))) << cluster_->Log(old);
  ASSERT_TRUE(Insert(fresh, 3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitForRows(i, "1,2,3")) << cluster_->Name(i) << ": " << Rows(i);
  }
  EXPECT_EQ(cluster_->Leader(), cluster_->Name(fresh));
  // Promotion drops recovery settings; that is no reason to restart (Patroni ignores them too).
  EXPECT_THAT(cluster_->HttpBody(fresh, "/patroni"), Not(HasSubstr("pending_restart")));
}

TEST_F(HaClusterTest, PostmasterCrashUnderALiveAgentRestartsTheSamePrimaryOnItsTimeline) {
  auto timeline = cluster_->Sql(primary_, "SELECT timeline_id FROM pg_control_checkpoint()");
  ASSERT_TRUE(timeline.has_value());
  std::string leader = cluster_->Leader();
  cluster_->KillPostmaster(primary_);
  // While PostgreSQL is down, a load balancer must not be told to send writes here.
  bool saw_503 = false;
  for (int i = 0; i < 20 && !saw_503; ++i) {
    saw_503 = cluster_->HttpStatus(primary_, "/primary", "OPTIONS") == 503;
    std::this_thread::sleep_for(milliseconds(50));
  }
  int back = cluster_->WaitForWritablePrimary(seconds(30));
  EXPECT_EQ(back, primary_);
  EXPECT_EQ(cluster_->Leader(), leader);
  ASSERT_TRUE(Insert(primary_, 7));
  // Crash recovery in place: the same timeline, no promotion.
  EXPECT_EQ(
      cluster_->Sql(
          primary_,
          "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"),
      timeline);
  EXPECT_TRUE(saw_503 || cluster_->HttpStatus(primary_, "/primary") == 200);
  // The first start already succeeds: it waits for the dead postmaster's backends to let go of
  // the old shared memory instead of failing and trying again a loop_wait later.
  EXPECT_THAT(cluster_->Log(primary_), Not(HasSubstr("pg_ctl start failed")));
}

TEST_F(HaClusterTest, SigtermOfThePrimaryAgentHandsOverAtOnce) {
  ASSERT_TRUE(Insert(primary_, 1));
  int old = primary_;
  auto start = std::chrono::steady_clock::now();
  cluster_->StopNode(old);
  int fresh = cluster_->WaitForWritablePrimary(seconds(30), old);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_GE(fresh, 0);
  EXPECT_NE(fresh, old);
  // Well below ttl: the leader key was deleted, not left to expire.
  EXPECT_LT(took, seconds(6)) << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  EXPECT_TRUE(WaitForRows(fresh, "1"));
}

TEST_F(HaClusterTest, FrozenPrimaryAgentIsFencedBeforeAnotherNodeTakesOver) {
  int old = primary_;
  EXPECT_THAT(cluster_->Log(old), HasSubstr("fence: process"));
  int next_id = 1000;
  auto writable = [&](int node) { return Insert(node, next_id++); };
  cluster_->SignalAgent(old, SIGSTOP);
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };
  std::optional<std::chrono::steady_clock::duration> old_fenced, new_writable;
  int fresh = -1;
  // Probe every 50 ms: the old primary must refuse writes before any other node takes them.
  while (elapsed() < seconds(60) && !(old_fenced && new_writable)) {
    if (!old_fenced && !writable(old)) {
      old_fenced = elapsed();
    }
    for (int i = 0; i < 3 && !new_writable; ++i) {
      if (i != old && writable(i)) {
        new_writable = elapsed();
        fresh = i;
      }
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  cluster_->SignalAgent(old, SIGCONT);
  ASSERT_TRUE(old_fenced) << "the frozen primary kept taking writes";
  ASSERT_TRUE(new_writable) << "no new primary";
  EXPECT_LT(*old_fenced, *new_writable) << "two primaries took writes at once";
  EXPECT_THAT(cluster_->Log(old), HasSubstr("the leader lock was not renewed in time"));
  // Thawed, the old primary finds its PostgreSQL killed and the lock gone: it rejoins.
  ASSERT_TRUE(cluster_->WaitForStreamingReplica(old, seconds(90))) << cluster_->Log(old);
  EXPECT_EQ(cluster_->Leader(), cluster_->Name(fresh));
}

TEST_F(HaClusterTest, OneEtcdMemberDownChangesNoRoles) {
  std::string leader = cluster_->Leader();
  cluster_->etcd().KillMember(0);
  std::this_thread::sleep_for(seconds(8));  // longer than ttl: a lost lock would show
  EXPECT_EQ(cluster_->Leader(), leader);
  EXPECT_TRUE(Insert(primary_, 11));
  for (int i = 0; i < 3; ++i) {
    if (i != primary_) {
      EXPECT_TRUE(WaitForRows(i, "11"));
    }
  }
}

TEST_F(HaClusterTest, EtcdQuorumLossMakesThePrimaryReadOnlyAndItRecovers) {
  cluster_->etcd().KillMember(1);
  cluster_->etcd().KillMember(2);
  auto start = std::chrono::steady_clock::now();
  bool read_only = false;
  while (std::chrono::steady_clock::now() - start < seconds(12)) {
    auto r = cluster_->Sql(primary_, "SELECT pg_is_in_recovery()", 1);
    if (!r || *r == "t") {
      read_only = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(read_only) << "the primary still accepted writes without the DCS";
  EXPECT_LT(took, seconds(6)) << "not read-only within ttl";
  ASSERT_TRUE(cluster_->etcd().StartMember(1));
  ASSERT_TRUE(cluster_->etcd().StartMember(2));
  int back = cluster_->WaitForWritablePrimary(seconds(60));
  ASSERT_GE(back, 0) << "no primary after etcd came back";
  EXPECT_TRUE(Insert(back, 21));
}

// At Patroni's default loop_wait (10 s) a switchover and the health checks after it must not wait
// for the loop: members observe every half second while the leadership moves, and a promotion is
// published at once (HAProxy's /primary check and the handover's wait on the candidates read it).
TEST(SlowLoopTest, SwitchoverAtLoopWait10DoesNotWaitForTheLoop) {
  PghaClusterOptions options;
  options.ttl = 30;
  options.loop_wait = 10;
  options.retry_timeout = 10;
  PghaCluster cluster(PghaBinary(), options);
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster.StartNode(i));
  }
  int old = cluster.WaitForWritablePrimary(seconds(90));
  ASSERT_GE(old, 0) << cluster.Log(0);
  for (int i = 0; i < 3; ++i) {
    if (i != old) {
      ASSERT_TRUE(cluster.WaitForStreamingReplica(i, seconds(90))) << cluster.Log(i);
    }
  }
  // A settled cluster runs one cycle a loop_wait: an event that the agent causes itself during a
  // cycle (its own DCS write) must not wake it again and again.
  auto cycles = [&](int node) {
    std::string metrics = cluster.HttpBody(node, "/metrics");
    auto at = metrics.find("\npgha_ha_cycles_total{");
    auto value = at == std::string::npos ? at : metrics.find("} ", at);
    return value == std::string::npos ? -1L : std::stol(metrics.substr(value + 2));
  };
  std::vector<long> before;
  for (int i = 0; i < 3; ++i) {
    before.push_back(cycles(i));
    ASSERT_GE(before.back(), 0) << cluster.HttpBody(i, "/metrics");
  }
  std::this_thread::sleep_for(seconds(6));
  for (int i = 0; i < 3; ++i) {
    EXPECT_LE(cycles(i) - before[i], 2) << cluster.Name(i) << " cycles more often than loop_wait";
  }
  std::string out;
  std::vector<std::string> put = {"etcdctl", "--endpoints=" + cluster.etcd().Hosts()[0], "put",
                                  "/service/" + cluster.scope() + "/failover",
                                  "{\"leader\": \"" + cluster.Name(old) + "\"}"};
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(RunCommand(put, &out, {{"ETCDCTL_API", "3"}}), 0) << out;
  int fresh = cluster.WaitForWritablePrimary(seconds(40), old);
  auto writable = std::chrono::steady_clock::now() - start;
  ASSERT_GE(fresh, 0) << cluster.Log(old);
  // Before the fix: about two loop_waits (one waiting for the candidates to report the
  // shutdown checkpoint, one for the race).
  EXPECT_LT(writable, seconds(8)) << std::chrono::duration_cast<milliseconds>(writable).count()
                                  << " ms; log of the old primary:\n"
                                  << cluster.Log(old) << "\nlog of the new primary:\n"
                                  << cluster.Log(fresh);
  EXPECT_TRUE(WaitUntil([&] { return cluster.HttpStatus(fresh, "/primary", "OPTIONS") == 200; },
                        seconds(2)))
      << "the new primary's health check still says no 2 s after it took writes";
  for (int i = 0; i < 3; ++i) {
    cluster.StopNode(i);
  }
}

}  // namespace
}  // namespace pgha::testing
