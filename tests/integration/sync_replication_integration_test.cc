// synchronous_mode on a real 3-node cluster: the leader lists one replica in
// synchronous_standby_names and names it in the sync key; after a crash only that replica takes
// over, with every acknowledged row; the asynchronous replica never does.
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
  EXPECT_THAT(cluster_->HttpBody(sync_, "/patroni"), ::testing::HasSubstr("\"sync_standby\":true"));
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

}  // namespace
}  // namespace pgha::testing
