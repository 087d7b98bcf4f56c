// synchronous_mode on a real 3-node cluster: the leader lists one replica in
// synchronous_standby_names and names it in the sync key; after a crash only that replica takes
// over, with every acknowledged row; the asynchronous replica never does.
// synchronous_mode: quorum on the same cluster: ANY 1 of both replicas, and a replica takes over
// only once it has seen the other voter.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/pgha_cluster.h"

namespace pgha::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class SyncModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PghaClusterOptions options;
    options.extra_dcs = {"synchronous_mode: true"};
    cluster_ = std::make_unique<PghaCluster>(PghaBinary(), options);
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    std::string why;
    primary_ = cluster_->StartAndWaitForReplication(&why);
    ASSERT_GE(primary_, 0) << why;
    sync_ = WaitForSyncStandby(primary_, seconds(30));
    ASSERT_GE(sync_, 0) << "no sync standby named; sync key: " << cluster_->DcsValue("sync") << "\n"
                        << cluster_->Log(primary_);
    async_ = 3 - primary_ - sync_;
    ASSERT_TRUE(cluster_->Sql(primary_, "CREATE TABLE rows(id int primary key)").has_value());
  }

  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << cluster_->AllLogs();
    }
  }

  // The replica the sync key names for `leader`, once PostgreSQL treats it as synchronous.
  int WaitForSyncStandby(int leader, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto key = nlohmann::json::parse(cluster_->DcsValue("sync"), nullptr, false);
      if (key.is_object() && key.value("leader", nlohmann::json()) == cluster_->Name(leader) &&
          key["sync_standby"].is_string()) {
        std::string name = key["sync_standby"];
        auto sync = cluster_->Sql(
            leader, "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'");
        if (sync == name) {
          for (int i = 0; i < 3; ++i) {
            if (cluster_->Name(i) == name) {
              return i;
            }
          }
        }
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    return -1;
  }

  std::unique_ptr<PghaCluster> cluster_;
  int primary_ = -1;
  int sync_ = -1;
  int async_ = -1;
};

TEST_F(SyncModeTest, OneReplicaIsSynchronousAndTheChecksSaySo) {
  EXPECT_EQ(cluster_->Sql(primary_, "SHOW synchronous_standby_names"),
            "\"" + cluster_->Name(sync_) + "\"");
  // The health checks read the status the loop publishes; give it a cycle.
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(cluster_->HttpStatus(sync_, "/sync"), 200);
  EXPECT_EQ(cluster_->HttpStatus(async_, "/sync"), 503);
  EXPECT_EQ(cluster_->HttpStatus(async_, "/async"), 200);
  EXPECT_EQ(cluster_->HttpStatus(primary_, "/read-only-sync"), 200);
  EXPECT_THAT(cluster_->HttpBody(sync_, "/patroni"),
              ::testing::HasSubstr("\"sync_standby\": true"));
}

TEST_F(SyncModeTest, NodeCrashPromotesTheSyncStandbyWithEveryAcknowledgedRow) {
  for (int id = 1; id <= 200; ++id) {
    ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (" + std::to_string(id) + ")"));
  }
  cluster_->KillNode(primary_);
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), primary_);
  ASSERT_EQ(fresh, sync_) << "only the synchronous standby may take over";
  EXPECT_EQ(cluster_->Sql(fresh, "SELECT count(*) FROM rows"), "200");
  // The new leader makes the remaining replica its synchronous standby.
  EXPECT_EQ(WaitForSyncStandby(fresh, seconds(30)), async_) << cluster_->DcsValue("sync");
}

TEST_F(SyncModeTest, ADeadSyncStandbyIsReplacedAndTheReplacementTakesOver) {
  ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (1)"));
  cluster_->KillNode(sync_);
  // The leader drops the dead standby from the key before listing the other replica.
  int replacement = WaitForSyncStandby(primary_, seconds(30));
  ASSERT_EQ(replacement, async_) << cluster_->DcsValue("sync");
  ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (2)"));
  // Now the old sync standby is the one left behind: kill the primary too. The key names the
  // replica that has row 2, so it takes over; the stopped one could not.
  cluster_->KillNode(primary_);
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), primary_);
  ASSERT_EQ(fresh, async_);
  EXPECT_EQ(cluster_->Sql(fresh, "SELECT count(*) FROM rows"), "2");
}

TEST_F(SyncModeTest, TheAsyncReplicaStaysAReplicaWhenPrimaryAndSyncStandbyDieTogether) {
  ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (1)"));
  cluster_->KillNode(sync_);
  cluster_->KillNode(primary_);
  // ttl is 6 s: an asynchronous cluster would have a new primary well within 15 s.
  EXPECT_EQ(cluster_->WaitForWritablePrimary(seconds(15), primary_), -1)
      << "the asynchronous replica took over without the acknowledged rows' guarantee";
  EXPECT_EQ(cluster_->Leader(), "");
  // The synchronous standby comes back and takes over with the row.
  ASSERT_TRUE(cluster_->StartNode(sync_));
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), primary_);
  ASSERT_EQ(fresh, sync_);
  EXPECT_EQ(cluster_->Sql(fresh, "SELECT count(*) FROM rows"), "1");
}

class QuorumModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PghaClusterOptions options;
    options.extra_dcs = {"synchronous_mode: quorum"};
    cluster_ = std::make_unique<PghaCluster>(PghaBinary(), options);
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    std::string why;
    primary_ = cluster_->StartAndWaitForReplication(&why);
    ASSERT_GE(primary_, 0) << why;
    replicas_ = {(primary_ + 1) % 3, (primary_ + 2) % 3};
    ASSERT_TRUE(WaitForQuorum(primary_, {replicas_[0], replicas_[1]}, 1, seconds(30)))
        << "sync key: " << cluster_->DcsValue("sync") << "\n"
        << cluster_->Log(primary_);
    ASSERT_TRUE(cluster_->Sql(primary_, "CREATE TABLE rows(id int primary key)").has_value());
  }

  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << cluster_->AllLogs();
    }
  }

  // Waits until the sync key of `leader` names `voters` with `quorum`, and PostgreSQL on the
  // leader runs ANY k of exactly them with every one reporting sync_state quorum.
  bool WaitForQuorum(int leader, const std::vector<int>& voters, int quorum, milliseconds timeout) {
    std::vector<std::string> names;
    for (int v : voters) {
      names.push_back(cluster_->Name(v));
    }
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const auto& n : names) {
      joined += (joined.empty() ? "" : ",") + n;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto key = nlohmann::json::parse(cluster_->DcsValue("sync"), nullptr, false);
      if (key.is_object() && key.value("leader", nlohmann::json()) == cluster_->Name(leader) &&
          key.value("sync_standby", nlohmann::json()) == joined &&
          key.value("quorum", -1) == quorum) {
        auto in_quorum =
            cluster_->Sql(leader,
                          "SELECT string_agg(application_name, ',' ORDER BY application_name) FROM "
                          "pg_stat_replication WHERE sync_state = 'quorum'");
        if (in_quorum == joined) {
          return true;
        }
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    return false;
  }

  std::unique_ptr<PghaCluster> cluster_;
  int primary_ = -1;
  std::vector<int> replicas_;
};

TEST_F(QuorumModeTest, BothReplicasAreQuorumStandbysAndTheChecksSaySo) {
  auto names = std::vector<std::string>{cluster_->Name(replicas_[0]), cluster_->Name(replicas_[1])};
  std::sort(names.begin(), names.end());
  EXPECT_EQ(cluster_->Sql(primary_, "SHOW synchronous_standby_names"),
            "ANY 1 (\"" + names[0] + "\",\"" + names[1] + "\")");
  std::this_thread::sleep_for(seconds(2));  // the checks read the status the loop publishes
  for (int r : replicas_) {
    EXPECT_EQ(cluster_->HttpStatus(r, "/quorum"), 200);
    EXPECT_EQ(cluster_->HttpStatus(r, "/read-only-quorum"), 200);
    EXPECT_EQ(cluster_->HttpStatus(r, "/sync"), 503);
    EXPECT_EQ(cluster_->HttpStatus(r, "/async"), 503);
    EXPECT_THAT(cluster_->HttpBody(r, "/patroni"),
                ::testing::HasSubstr("\"quorum_standby\": true"));
    EXPECT_THAT(cluster_->HttpBody(r, "/metrics"),
                ::testing::ContainsRegex("patroni_quorum_standby\\{[^}]*\\} 1"));
  }
  EXPECT_EQ(cluster_->HttpStatus(primary_, "/read-only-quorum"), 200);
  EXPECT_EQ(cluster_->HttpStatus(primary_, "/quorum"), 503);
  EXPECT_THAT(cluster_->HttpBody(primary_, "/cluster"), ::testing::HasSubstr("quorum_standby"));
}

TEST_F(QuorumModeTest, NodeCrashPromotesAReplicaWithEveryAcknowledgedRow) {
  for (int id = 1; id <= 200; ++id) {
    ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (" + std::to_string(id) + ")"));
  }
  cluster_->KillNode(primary_);
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), primary_);
  ASSERT_GE(fresh, 0);
  EXPECT_EQ(cluster_->Sql(fresh, "SELECT count(*) FROM rows"), "200");
  int other = fresh == replicas_[0] ? replicas_[1] : replicas_[0];
  EXPECT_TRUE(WaitForQuorum(fresh, {other}, 0, seconds(30))) << cluster_->DcsValue("sync");
}

TEST_F(QuorumModeTest, ALoneReplicaWaitsForTheOtherVoterBeforeTakingOver) {
  ASSERT_TRUE(cluster_->Sql(primary_, "INSERT INTO rows VALUES (1)"));
  // ANY 1 (both): the row may be on the replica that dies with the primary only.
  cluster_->KillNode(replicas_[0]);
  cluster_->KillNode(primary_);
  EXPECT_EQ(cluster_->WaitForWritablePrimary(seconds(15), primary_), -1)
      << "a replica took over without seeing the other voter";
  EXPECT_EQ(cluster_->Leader(), "");
  ASSERT_TRUE(cluster_->StartNode(replicas_[0]));
  int fresh = cluster_->WaitForWritablePrimary(seconds(60), primary_);
  ASSERT_GE(fresh, 0);
  EXPECT_NE(fresh, primary_);
  EXPECT_EQ(cluster_->Sql(fresh, "SELECT count(*) FROM rows"), "1");
}

}  // namespace
}  // namespace pgha::testing
