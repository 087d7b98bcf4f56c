// failsafe_mode on a real cluster: with etcd's quorum gone, the primary keeps taking writes while
// every member accepts its POST /failsafe, and demotes when one does not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/pgha_cluster.h"

namespace pgha::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class FailsafeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PghaClusterOptions options;
    options.extra_dcs = {"failsafe_mode: true"};
    cluster_ = std::make_unique<PghaCluster>(PghaBinary(), options);
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
    std::string why;
    primary_ = cluster_->StartAndWaitForReplication(&why);
    ASSERT_GE(primary_, 0) << why;
    // The leader lists every member in the failsafe key.
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto key = nlohmann::json::parse(cluster_->DcsValue("failsafe"), nullptr, false);
      if (key.is_object() && key.size() == 3) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    ASSERT_EQ(nlohmann::json::parse(cluster_->DcsValue("failsafe"), nullptr, false).size(), 3u)
        << cluster_->DcsValue("failsafe");
    ASSERT_TRUE(cluster_->Sql(primary_, "CREATE TABLE rows(id int primary key)").has_value());
  }

  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::cerr << cluster_->AllLogs();
    }
  }

  bool Insert(int node, int id) {
    return cluster_->Sql(node, "INSERT INTO rows VALUES (" + std::to_string(id) + ")", 2)
        .has_value();
  }

  std::unique_ptr<PghaCluster> cluster_;
  int primary_ = -1;
};

TEST_F(FailsafeTest, PrimaryKeepsTakingWritesWhileEveryMemberAnswers) {
  cluster_->etcd().KillMember(1);
  cluster_->etcd().KillMember(2);
  // Three ttl (6 s): without failsafe_mode the primary is read-only within one.
  auto start = std::chrono::steady_clock::now();
  int id = 0;
  int failed = 0;
  while (std::chrono::steady_clock::now() - start < seconds(18)) {
    failed += Insert(primary_, ++id) ? 0 : 1;
    std::this_thread::sleep_for(milliseconds(250));
  }
  EXPECT_EQ(failed, 0) << "of " << id << " writes while etcd had no quorum";
  EXPECT_THAT(cluster_->Log(primary_),
              HasSubstr("continue to run as a leader because failsafe mode is enabled"));
  EXPECT_EQ(cluster_->HttpStatus(primary_, "/failsafe"), 200);
  ASSERT_TRUE(cluster_->etcd().StartMember(1));
  ASSERT_TRUE(cluster_->etcd().StartMember(2));
  // The same primary goes on; nobody took over.
  int back = cluster_->WaitForWritablePrimary(seconds(60));
  EXPECT_EQ(back, primary_);
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (cluster_->Leader() != cluster_->Name(primary_) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(cluster_->Leader(), cluster_->Name(primary_));
  EXPECT_EQ(cluster_->Sql(primary_, "SELECT count(*) FROM rows"), std::to_string(id - failed));
}

TEST_F(FailsafeTest, PrimaryStopsTakingWritesWhenAMemberDoesNotAnswer) {
  int replica = (primary_ + 1) % 3;
  cluster_->KillNode(replica);
  cluster_->etcd().KillMember(1);
  cluster_->etcd().KillMember(2);
  auto start = std::chrono::steady_clock::now();
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() - start < seconds(15)) {
    auto r = cluster_->Sql(primary_, "SELECT pg_is_in_recovery()", 1);
    refused = !r || *r == "t";
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(refused) << "the primary kept taking writes though a member could not be asked";
}

}  // namespace
}  // namespace pgha::testing
