// The DCS values a real Patroni 3.0.2 cluster wrote (tests/compat/patroni-3.0.2/*-dcs.txt)
// decode to the cluster they describe, and our encoders reproduce Patroni's bytes.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/lsn.h"
#include "fakes/compat_data.h"
#include "model/codec.h"

namespace pgha::model {
namespace {

using testing::ReadDcsDump;

const KeyValue* Find(const std::vector<KeyValue>& keys, const std::string& key) {
  for (const auto& kv : keys) {
    if (kv.key == key) {
      return &kv;
    }
  }
  return nullptr;
}

TEST(GoldenTest, InitialCluster) {
  auto keys = ReadDcsDump("initial-dcs.txt");
  auto snapshot = BuildSnapshot(keys, 23);
  EXPECT_TRUE(snapshot.decode_errors.empty());
  ASSERT_TRUE(snapshot.leader.has_value());
  EXPECT_EQ(snapshot.leader->name, "pg-0");
  EXPECT_EQ(snapshot.initialize, "7712196491986988846");
  ASSERT_EQ(snapshot.members.size(), 3u);
  EXPECT_TRUE(snapshot.LeaderMember()->IsPrimaryRole());
  EXPECT_EQ(snapshot.members[1].role(), "replica");
  EXPECT_EQ(snapshot.members[2].api_url(), "http://127.0.0.1:8010/patroni");
  EXPECT_EQ(snapshot.members[2].port(), 5434);
  EXPECT_EQ(snapshot.status.optime, 67288520u);
  ASSERT_TRUE(snapshot.config.has_value());
  const auto& config = snapshot.config->data;
  EXPECT_EQ(config.ttl(), 30);
  EXPECT_EQ(config.loop_wait(), 10);
  EXPECT_EQ(config.maximum_lag_on_failover(), 1048576);
  EXPECT_TRUE(config.use_pg_rewind());
  EXPECT_TRUE(config.use_slots());
  EXPECT_EQ(config.postgresql_parameters()["wal_keep_size"], "128MB");
  EXPECT_FALSE(snapshot.has_history);
}

TEST(GoldenTest, EncodersReproducePatroniBytes) {
  auto keys = ReadDcsDump("initial-dcs.txt");
  for (const auto& kv : keys) {
    if (kv.key.rfind("members/", 0) != 0) {
      continue;
    }
    auto member = DecodeMember(kv.key.substr(8), kv.value);
    ASSERT_TRUE(member.ok());
    MemberData data;
    data.conn_url = member->conn_url();
    data.api_url = member->api_url();
    data.state = member->state();
    data.role = member->role();
    data.version = member->version();
    data.xlog_location = member->xlog_location();
    data.timeline = member->timeline();
    EXPECT_EQ(EncodeMember(data), kv.value);
  }
  auto status = DecodeStatus(Find(keys, "status")->value);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(EncodeStatus(*status), Find(keys, "status")->value);
  // Config is compared as JSON: Patroni keeps insertion order, the value is what matters.
  auto config = DecodeConfig(Find(keys, "config")->value);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(nlohmann::json::parse(EncodeConfig(*config)),
            nlohmann::json::parse(Find(keys, "config")->value));
}

TEST(GoldenTest, AfterFailoverHistoryRoundTrips) {
  auto keys = ReadDcsDump("after-failover-dcs.txt");
  auto snapshot = BuildSnapshot(keys, 168);
  EXPECT_TRUE(snapshot.decode_errors.empty());
  EXPECT_EQ(snapshot.leader->name, "pg-1");
  EXPECT_EQ(snapshot.LeaderMember()->timeline(), 8);
  ASSERT_TRUE(snapshot.has_history);
  ASSERT_EQ(snapshot.history.size(), 7u);
  EXPECT_EQ(snapshot.history.back().timeline, 7);
  EXPECT_EQ(snapshot.history.back().lsn, 117440672u);
  EXPECT_EQ(Lsn(snapshot.history.back().lsn).ToString(), "0/70000A0");
  EXPECT_EQ(snapshot.history.back().new_leader, "pg-1");
  EXPECT_EQ(EncodeHistory(snapshot.history), Find(keys, "history")->value);
}

TEST(GoldenTest, AfterSwitchoverEmptyFailoverKeyMeansNone) {
  auto keys = ReadDcsDump("after-switchover-dcs.txt");
  ASSERT_NE(Find(keys, "failover"), nullptr);
  auto snapshot = BuildSnapshot(keys, 1000);
  EXPECT_TRUE(snapshot.decode_errors.empty());
  EXPECT_FALSE(snapshot.failover.has_value());
  EXPECT_EQ(snapshot.leader->name, "pg-2");
  EXPECT_EQ(snapshot.history.size(), 16u);
}

}  // namespace
}  // namespace pgha::model
